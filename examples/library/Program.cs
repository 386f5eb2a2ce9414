// Train a small network on Fashion-MNIST with the Gpu.Engine package, save it, load it back and predict.
// dotnet run -- [DATA_FOLDER] [TRAINING_IMAGES] [EPOCHS]
using Gpu;
using Gpu.Engine.Settings;

string folder = args.Length > 0 ? args[0] : "data/fashion-mnist";
int images = args.Length > 1 ? int.Parse(args[1]) : 10_000, epochs = args.Length > 2 ? int.Parse(args[2]) : 3;

using var device = Device.Open("auto");
Console.WriteLine($"device: {device.Description}");
var data = ImageData.Load(folder).TakeTrain(images);
var options = new TrainOptions { Hidden = [128], Epochs = epochs, LearningRate = 0.1f, Seed = 7 };
var network = Network.Train(device, data, options, progress => Console.WriteLine(progress));
var test = network.Evaluate(device, data.Test);
Console.WriteLine($"{network}: test accuracy {test.Accuracy:F4}, loss {test.Loss:F4} on {test.Count} images");

network.Save("example-model");
var loaded = Network.Load("example-model");
var predictions = loaded.Predict(device, data.Test.Take(5));
for (int i = 0; i < predictions.Count; i++)
{
    var p = predictions[i];
    Console.WriteLine($"test image {i}: {loaded.ClassNames[p.Class]} ({p.Probabilities[p.Class]:P1}), label {loaded.ClassNames[data.Test.Labels.Span[i]]}");
}
