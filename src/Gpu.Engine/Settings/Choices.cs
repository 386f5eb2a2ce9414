namespace Gpu.Engine.Settings;

/// <summary>Activation of the hidden layers (the values equal the kernels' Activations codes).</summary>
public enum Activation
{
    /// <summary>No activation (the output layer of a softmax-ce network).</summary>
    Identity = 0,
    /// <summary>max(0, x).</summary>
    Relu = 1,
    /// <summary>1 / (1 + exp(-x)).</summary>
    Sigmoid = 2,
    /// <summary>tanh(x).</summary>
    Tanh = 3,
    /// <summary>x for x &gt; 0, else 0.01 x.</summary>
    LeakyRelu = 4,
}

/// <summary>Weight initialisation: uniform on [-limit, limit].</summary>
public enum InitKind
{
    /// <summary>He/Kaiming uniform: limit sqrt(6 / fan_in).</summary>
    He,
    /// <summary>Glorot/Xavier uniform: limit sqrt(6 / (fan_in + fan_out)).</summary>
    Glorot,
    /// <summary>The uniform init of the NumPy code (README): limit 1 / sqrt(fan_in).</summary>
    Uniform,
}

/// <summary>Output layer and cost.</summary>
public enum LossKind
{
    /// <summary>Linear output, softmax, mean cross-entropy.</summary>
    SoftmaxCrossEntropy,
    /// <summary>Sigmoid outputs, cost 1/2 sum (a - y)^2 (mean over the batch), dC/da = a - y.</summary>
    SigmoidSquaredError,
}

/// <summary>Which update rule the fused optimizer kernel applies.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with classical momentum (momentum 0: plain SGD); L2 added to the gradient.</summary>
    Sgd,
    /// <summary>SGD with Nesterov momentum; L2 added to the gradient.</summary>
    Nesterov,
    /// <summary>Adam; L2 added to the gradient.</summary>
    Adam,
    /// <summary>AdamW: Adam with decoupled weight decay (weights only).</summary>
    AdamW,
}

/// <summary>What early stopping watches on the validation split.</summary>
public enum EarlyStopMetric
{
    /// <summary>The validation loss (lower is better).</summary>
    Loss,
    /// <summary>The validation accuracy (higher is better).</summary>
    Accuracy,
}

/// <summary>Learning-rate schedule over the whole run.</summary>
public enum LrSchedule
{
    /// <summary>The learning rate throughout.</summary>
    Constant,
    /// <summary>Cosine decay from the learning rate to 0 over the run (after any warm-up).</summary>
    Cosine,
    /// <summary>The learning rate times <see cref="TrainOptions.StepGamma"/> every <see cref="TrainOptions.StepEvery"/> epochs.</summary>
    Step,
}

/// <summary>How batches reach the device.</summary>
public enum DataPath
{
    /// <summary>Resident when the data fits the device's budget for it, else streamed.</summary>
    Auto,
    /// <summary>The dataset on the device once; batches gathered there.</summary>
    Resident,
    /// <summary>Batches copied from page-locked host buffers while the previous step computes.</summary>
    Stream,
}

/// <summary>A file format a trained network is exported to (<c>gpu export --format</c>, <c>Network.Export</c>).</summary>
public enum ExportFormat
{
    /// <summary>ONNX (opset 17): raw pixel values 0..255 in, the preprocessing inside the graph, probabilities and logits out.</summary>
    Onnx,
    /// <summary>safetensors: the tensors of a PyTorch Sequential of Linear layers (0.weight, 0.bias, 2.weight, ...), the spec in its metadata.</summary>
    Safetensors,
}

/// <summary>
/// The precision of the dense-layer products' inputs (<c>--precision</c>). Master weights, optimizer state, the loss and
/// every reduction stay fp32; only what the multipliers see is rounded, and the products are summed in fp32.
/// </summary>
public enum Precision
{
    /// <summary>Every product in fp32 (the default; results as before the setting existed).</summary>
    Fp32,
    /// <summary>Each product input rounded to TF32 (10 mantissa bits, to nearest, ties away from zero), as NVIDIA tensor cores take fp32 inputs.</summary>
    Tf32,
    /// <summary>Each product input rounded to bfloat16 (7 mantissa bits, to nearest even).</summary>
    Bf16,
}
