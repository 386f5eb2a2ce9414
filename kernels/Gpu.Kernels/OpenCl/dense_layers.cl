// Dense-layer products in OpenCL C for OpenCL CPU devices (POCL): the "cl-vector" GEMM family.
// LLVM turns the explicit float16 arithmetic into 512-bit (or 2x256-bit) vector code regardless of how
// the driver groups work-items, which ILGPU's generated OpenCL C cannot express (it has no vector
// types and no fma). Row-major float32 throughout; every buffer comes with an element offset (the
// ILGPU view's index into its buffer). Any shape: edge blocks clamp their loads and guard their stores.
// Built with -DROUND_TF32 or -DROUND_BF16, every input of a product passes through RIN (one float) or RIN16
// (16 lanes) as it is loaded: rounded as a tensor core rounds it (the emulation of --precision tf32 and bf16);
// the sums stay fp32, and the epilogues (bias, activation, the bias gradient's sums) read unrounded values.
// Without either, RIN and RIN16 are the value itself: the fp32 program.

#if defined(ROUND_TF32)
// cvt.rna.tf32.f32: 10 mantissa bits, to nearest, ties away from zero; NaN and infinities as they are.
inline float round_in(float x) { return isfinite(x) ? as_float((as_uint(x) + 0x1000u) & 0xffffe000u) : x; }
inline float16 round_in16(float16 x) { return select(x, as_float16((as_uint16(x) + 0x1000u) & 0xffffe000u), isfinite(x)); }
#define RIN(v) round_in(v)
#define RIN16(v) round_in16(v)
#elif defined(ROUND_BF16)
// cvt.rn.bf16.f32: 7 mantissa bits, to nearest, ties to even; NaN stays NaN (infinities round to themselves).
inline float round_in(float x)
{
    uint u = as_uint(x);
    return isnan(x) ? x : as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}
inline float16 round_in16(float16 x)
{
    uint16 u = as_uint16(x);
    return select(as_float16((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u), x, isnan(x));
}
#define RIN(v) round_in(v)
#define RIN16(v) round_in16(v)
#else
#define RIN(v) (v)
#define RIN16(v) (v)
#endif

#define ACT_IDENTITY 0
#define ACT_RELU 1
#define ACT_SIGMOID 2
#define ACT_TANH 3
#define ACT_LEAKY_RELU 4
#define LEAKY_SLOPE 0.01f

// h = act(z), as Gpu.Kernels.Activations.Apply (NaN passes through).
inline float act_apply(float z, int act)
{
    if (act == ACT_RELU) return z < 0.0f ? 0.0f : z;
    if (act == ACT_SIGMOID) return 1.0f / (1.0f + exp(-z));
    if (act == ACT_TANH) return tanh(z);
    if (act == ACT_LEAKY_RELU) return z < 0.0f ? LEAKY_SLOPE * z : z;
    return z;
}

// g * act'(z) written from the output h, as Gpu.Kernels.Activations.Backprop.
inline float act_backprop(float g, float h, int act)
{
    if (act == ACT_RELU) return h > 0.0f ? g : 0.0f;
    if (act == ACT_SIGMOID) return g * h * (1.0f - h);
    if (act == ACT_TANH) return g * (1.0f - h * h);
    if (act == ACT_LEAKY_RELU) return h > 0.0f ? g : LEAKY_SLOPE * g;
    return g;
}

// act_apply on 16 lanes at once (the same formulas; a NaN passes through, as there).
inline float16 act_apply16(float16 z, int act)
{
    if (act == ACT_RELU) return select(z, (float16)0.0f, z < 0.0f);
    if (act == ACT_SIGMOID) return 1.0f / (1.0f + exp(-z));
    if (act == ACT_TANH) return tanh(z);
    if (act == ACT_LEAKY_RELU) return select(z, LEAKY_SLOPE * z, z < 0.0f);
    return z;
}

// act_backprop on 16 lanes at once.
inline float16 act_backprop16(float16 g, float16 h, int act)
{
    if (act == ACT_RELU) return select((float16)0.0f, g, h > 0.0f);
    if (act == ACT_SIGMOID) return g * h * (1.0f - h);
    if (act == ACT_TANH) return g * (1.0f - h * h);
    if (act == ACT_LEAKY_RELU) return select(LEAKY_SLOPE * g, g, h > 0.0f);
    return g;
}

// The first n (0..16) floats at p, zeros after them.
inline float16 load_part(__global const float* p, int n)
{
    if (n >= 16) return vload16(0, p);
    float t[16];
    for (int i = 0; i < 16; i++) t[i] = i < n ? p[i] : 0.0f;
    return vload16(0, t);
}

// The first n (0..16) lanes of v to p.
inline void store_part(float16 v, __global float* p, int n)
{
    if (n >= 16) { vstore16(v, 0, p); return; }
    float t[16];
    vstore16(v, 0, t);
    for (int i = 0; i < n; i++) p[i] = t[i];
}

// Sums of the 16 lanes of each of sixteen vectors, in order: a tree of pairwise halvings.
#define HALVES(x, y) (float16)((x).lo + (x).hi, (y).lo + (y).hi)
inline float16 sum_lanes16(float16 s0, float16 s1, float16 s2, float16 s3, float16 s4, float16 s5, float16 s6, float16 s7,
                           float16 s8, float16 s9, float16 s10, float16 s11, float16 s12, float16 s13, float16 s14, float16 s15)
{
    // level 1: [s_a (8 partials) | s_b (8)]
    float16 p0 = HALVES(s0, s1), p1 = HALVES(s2, s3), p2 = HALVES(s4, s5), p3 = HALVES(s6, s7);
    float16 p4 = HALVES(s8, s9), p5 = HALVES(s10, s11), p6 = HALVES(s12, s13), p7 = HALVES(s14, s15);
    // level 2: four vectors' 4 partials each
#define QUARTERS(x, y) (float16)((x).s0123 + (x).s4567, (x).s89ab + (x).scdef, (y).s0123 + (y).s4567, (y).s89ab + (y).scdef)
    float16 r0 = QUARTERS(p0, p1), r1 = QUARTERS(p2, p3), r2 = QUARTERS(p4, p5), r3 = QUARTERS(p6, p7);
    // level 3: eight vectors' 2 partials each
#define EIGHTHS(x, y) (float16)((x).s02468ace + (x).s13579bdf, (y).s02468ace + (y).s13579bdf)
    float16 t0 = EIGHTHS(r0, r1), t1 = EIGHTHS(r2, r3);
    // level 4: sixteen sums
    return (float16)(t0.s02468ace + t0.s13579bdf, t1.s02468ace + t1.s13579bdf);
}

// Forward dense layer: Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]). One block: a 4x4 block of Y at
// (row 4*b1, column 4*b0), each of its 16 dot products kept as 16 partial sums along k.
static void dense_forward_block(__global const float* x, int xo, __global const float* w, int wo,
                            __global const float* b, int bo, __global float* y, int yo, int m, int n, int k, int act,
    int b0, int b1)
{
    x += xo; w += wo; b += bo; y += yo;
    int j0 = b0 * 4, i0 = b1 * 4;
    if (i0 >= m || j0 >= n) return;
    __global const float* x0 = x + (long)i0 * k;
    __global const float* x1 = x + (long)min(i0 + 1, m - 1) * k;
    __global const float* x2 = x + (long)min(i0 + 2, m - 1) * k;
    __global const float* x3 = x + (long)min(i0 + 3, m - 1) * k;
    __global const float* w0 = w + (long)j0 * k;
    __global const float* w1 = w + (long)min(j0 + 1, n - 1) * k;
    __global const float* w2 = w + (long)min(j0 + 2, n - 1) * k;
    __global const float* w3 = w + (long)min(j0 + 3, n - 1) * k;
    float16 s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
    float16 s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
    int p = 0;
    for (; p + 16 <= k; p += 16)
    {
        float16 a0 = RIN16(vload16(0, x0 + p)), a1 = RIN16(vload16(0, x1 + p)), a2 = RIN16(vload16(0, x2 + p)), a3 = RIN16(vload16(0, x3 + p));
        float16 c0 = RIN16(vload16(0, w0 + p)), c1 = RIN16(vload16(0, w1 + p)), c2 = RIN16(vload16(0, w2 + p)), c3 = RIN16(vload16(0, w3 + p));
        s00 = fma(a0, c0, s00); s01 = fma(a0, c1, s01); s02 = fma(a0, c2, s02); s03 = fma(a0, c3, s03);
        s10 = fma(a1, c0, s10); s11 = fma(a1, c1, s11); s12 = fma(a1, c2, s12); s13 = fma(a1, c3, s13);
        s20 = fma(a2, c0, s20); s21 = fma(a2, c1, s21); s22 = fma(a2, c2, s22); s23 = fma(a2, c3, s23);
        s30 = fma(a3, c0, s30); s31 = fma(a3, c1, s31); s32 = fma(a3, c2, s32); s33 = fma(a3, c3, s33);
    }
    if (p < k)   // the last k % 16 columns, zero-padded
    {
        int r = k - p;
        float16 a0 = RIN16(load_part(x0 + p, r)), a1 = RIN16(load_part(x1 + p, r)), a2 = RIN16(load_part(x2 + p, r)), a3 = RIN16(load_part(x3 + p, r));
        float16 c0 = RIN16(load_part(w0 + p, r)), c1 = RIN16(load_part(w1 + p, r)), c2 = RIN16(load_part(w2 + p, r)), c3 = RIN16(load_part(w3 + p, r));
        s00 = fma(a0, c0, s00); s01 = fma(a0, c1, s01); s02 = fma(a0, c2, s02); s03 = fma(a0, c3, s03);
        s10 = fma(a1, c0, s10); s11 = fma(a1, c1, s11); s12 = fma(a1, c2, s12); s13 = fma(a1, c3, s13);
        s20 = fma(a2, c0, s20); s21 = fma(a2, c1, s21); s22 = fma(a2, c2, s22); s23 = fma(a2, c3, s23);
        s30 = fma(a3, c0, s30); s31 = fma(a3, c1, s31); s32 = fma(a3, c2, s32); s33 = fma(a3, c3, s33);
    }
    float16 s = sum_lanes16(s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33);
    float t[16];
    vstore16(s, 0, t);
    for (int u = 0; u < 4 && i0 + u < m; u++)
        for (int v = 0; v < 4 && j0 + v < n; v++)
            y[(long)(i0 + u) * n + j0 + v] = act_apply(t[4 * u + v] + b[j0 + v], act);
}

// The kernel: each work-item does per0 x per1 blocks (dimension 0 fastest), from block (per0 gid(0), per1 gid(1)); the
// host sizes the launch from the device's cores and the product (DeviceProfile.ProductSplit), the kernel built once.
__kernel void dense_forward(__global const float* x, int xo, __global const float* w, int wo,
                            __global const float* b, int bo, __global float* y, int yo, int m, int n, int k, int act,
    int per0, int per1)
{
    int g0 = get_global_id(0) * per0, g1 = get_global_id(1) * per1;
    for (int v = 0; v < per1; v++)
        for (int u = 0; u < per0; u++)
            dense_forward_block(x, xo, w, wo, b, bo, y, yo, m, n, k, act, g0 + u, g1 + v);
}

// One step of the outer-product loop: the 8 block rows' A values (a0..a7: scalars read from memory, which a
// CPU compiler turns into broadcast loads), each through RIN, times the 16 columns in bv (rounded by the caller), added into c0..c7.
#define OUTER8(c, bv, a0, a1, a2, a3, a4, a5, a6, a7) \
    c##0 = fma((float16)(RIN(a0)), bv, c##0); c##1 = fma((float16)(RIN(a1)), bv, c##1); \
    c##2 = fma((float16)(RIN(a2)), bv, c##2); c##3 = fma((float16)(RIN(a3)), bv, c##3); \
    c##4 = fma((float16)(RIN(a4)), bv, c##4); c##5 = fma((float16)(RIN(a5)), bv, c##5); \
    c##6 = fma((float16)(RIN(a6)), bv, c##6); c##7 = fma((float16)(RIN(a7)), bv, c##7);
#define ZERO8(c) float16 c##0 = 0, c##1 = 0, c##2 = 0, c##3 = 0, c##4 = 0, c##5 = 0, c##6 = 0, c##7 = 0;

// The loop over the contraction, in three versions (two full 16-column vectors, one, or a partial block),
// so the full blocks run without a test per step. AS(u) is block row u's A value at step p, BROW the
// step's row of B at the block's first column.
#define OUTER_LOOP(count, AS, BROW) \
    if (n1 == 16) \
        for (int p = 0; p < count; p++) { __global const float* br = BROW; float16 b0 = RIN16(vload16(0, br)), b1 = RIN16(vload16(0, br + 16)); \
            OUTER8(c, b0, AS(0), AS(1), AS(2), AS(3), AS(4), AS(5), AS(6), AS(7)) OUTER8(d, b1, AS(0), AS(1), AS(2), AS(3), AS(4), AS(5), AS(6), AS(7)) } \
    else if (n1 == 0 && n0 == 16) \
        for (int p = 0; p < count; p++) { __global const float* br = BROW; float16 b0 = RIN16(vload16(0, br)); \
            OUTER8(c, b0, AS(0), AS(1), AS(2), AS(3), AS(4), AS(5), AS(6), AS(7)) } \
    else \
        for (int p = 0; p < count; p++) { __global const float* br = BROW; float16 b0 = RIN16(load_part(br, n0)), b1 = RIN16(load_part(br + 16, n1)); \
            OUTER8(c, b0, AS(0), AS(1), AS(2), AS(3), AS(4), AS(5), AS(6), AS(7)) OUTER8(d, b1, AS(0), AS(1), AS(2), AS(3), AS(4), AS(5), AS(6), AS(7)) }

// Weight gradient: dW[n,k] = dZ[m,n]^T . H[m,k], and, when withBias != 0, db[n] = column sums of dZ.
// One block: an 8x32 block of dW at (row 8*b0, column 32*b1), summing outer products of
// 8 consecutive dZ values and 32 consecutive H values over the m batch rows. Block rows past n read
// row n-1 again (their sums are not stored).
static void weight_grad_block(__global const float* dz, int dzo, __global const float* h, int ho,
                          __global float* dw, int dwo, __global float* db, int dbo, int m, int n, int k, int withBias,
    int b0, int b1)
{
    dz += dzo; h += ho; dw += dwo; db += dbo;
    int r0 = b0 * 8, q0 = b1 * 32;
    if (r0 >= n || q0 >= k) return;
    int rows = min(8, n - r0), n0 = min(16, k - q0), n1 = clamp(k - q0 - 16, 0, 16);
    int o1 = min(1, rows - 1), o2 = min(2, rows - 1), o3 = min(3, rows - 1), o4 = min(4, rows - 1), o5 = min(5, rows - 1), o6 = min(6, rows - 1), o7 = min(7, rows - 1);
    __global const float* z = dz + r0;
    __global const float* hq = h + q0;
    ZERO8(c) ZERO8(d)
#define WG_A(u) z[(long)p * n + o##u]
#define o0 0
    OUTER_LOOP(m, WG_A, hq + (long)p * k)
#undef o0
    __global float* out = dw + (long)r0 * k + q0;
#define STORE_ROW(u) if (u < rows) { store_part(c##u, out + (long)u * k, n0); if (n1 > 0) store_part(d##u, out + (long)u * k + 16, n1); }
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5) STORE_ROW(6) STORE_ROW(7)
    if (withBias != 0 && q0 == 0)
        for (int u = 0; u < rows; u++)
        {
            float s = 0.0f;
            for (int i = 0; i < m; i++) s += z[(long)i * n + u];
            db[r0 + u] = s;
        }
}

// The kernel: each work-item does per0 x per1 blocks (dimension 0 fastest), from block (per0 gid(0), per1 gid(1)); the
// host sizes the launch from the device's cores and the product (DeviceProfile.ProductSplit), the kernel built once.
__kernel void weight_grad(__global const float* dz, int dzo, __global const float* h, int ho,
                          __global float* dw, int dwo, __global float* db, int dbo, int m, int n, int k, int withBias,
    int per0, int per1)
{
    int g0 = get_global_id(0) * per0, g1 = get_global_id(1) * per1;
    for (int v = 0; v < per1; v++)
        for (int u = 0; u < per0; u++)
            weight_grad_block(dz, dzo, h, ho, dw, dwo, db, dbo, m, n, k, withBias, g0 + u, g1 + v);
}

// Input gradient through the previous layer's activation: dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]).
// One block: an 8x32 block of dX at (row 8*b0, column 32*b1), summing outer products of
// 8 dZ values (one per block row) and 32 consecutive W values over the n units.
static void input_grad_block(__global const float* dz, int dzo, __global const float* w, int wo,
                         __global const float* h, int ho, __global float* dx, int dxo, int m, int n, int k, int act,
    int b0, int b1)
{
    dz += dzo; w += wo; h += ho; dx += dxo;
    int r0 = b0 * 8, q0 = b1 * 32;
    if (r0 >= m || q0 >= k) return;
    int rows = min(8, m - r0), n0 = min(16, k - q0), n1 = clamp(k - q0 - 16, 0, 16);
    __global const float* z0 = dz + (long)r0 * n;
    __global const float* z1 = dz + (long)(r0 + min(1, rows - 1)) * n;
    __global const float* z2 = dz + (long)(r0 + min(2, rows - 1)) * n;
    __global const float* z3 = dz + (long)(r0 + min(3, rows - 1)) * n;
    __global const float* z4 = dz + (long)(r0 + min(4, rows - 1)) * n;
    __global const float* z5 = dz + (long)(r0 + min(5, rows - 1)) * n;
    __global const float* z6 = dz + (long)(r0 + min(6, rows - 1)) * n;
    __global const float* z7 = dz + (long)(r0 + min(7, rows - 1)) * n;
    __global const float* wq = w + q0;
    ZERO8(c) ZERO8(d)
#define IG_A(u) z##u[p]
    OUTER_LOOP(n, IG_A, wq + (long)p * k)
    float t[32];
#define STORE_MASKED(u) if (u < rows) { \
        long e = (long)(r0 + u) * k + q0; \
        if (n0 == 16 && (n1 == 16 || n1 == 0)) { \
            vstore16(act_backprop16(c##u, vload16(0, h + e), act), 0, dx + e); \
            if (n1 == 16) vstore16(act_backprop16(d##u, vload16(0, h + e + 16), act), 0, dx + e + 16); } \
        else { \
            vstore16(c##u, 0, t); vstore16(d##u, 0, t + 16); \
            for (int v = 0; v < n0 + n1; v++) dx[e + v] = act_backprop(t[v], h[e + v], act); } }
    STORE_MASKED(0) STORE_MASKED(1) STORE_MASKED(2) STORE_MASKED(3) STORE_MASKED(4) STORE_MASKED(5) STORE_MASKED(6) STORE_MASKED(7)
}

// The kernel: each work-item does per0 x per1 blocks (dimension 0 fastest), from block (per0 gid(0), per1 gid(1)); the
// host sizes the launch from the device's cores and the product (DeviceProfile.ProductSplit), the kernel built once.
__kernel void input_grad(__global const float* dz, int dzo, __global const float* w, int wo,
                         __global const float* h, int ho, __global float* dx, int dxo, int m, int n, int k, int act,
    int per0, int per1)
{
    int g0 = get_global_id(0) * per0, g1 = get_global_id(1) * per1;
    for (int v = 0; v < per1; v++)
        for (int u = 0; u < per0; u++)
            input_grad_block(dz, dzo, w, wo, h, ho, dx, dxo, m, n, k, act, g0 + u, g1 + v);
}

// Packing for large products (the engine packs when m*n*k is large; see ClVectorGemm): the strided
// rows of a big operand (power-of-two row strides put every row in the same cache set, and each row
// in its own page) become contiguous panels that the packed product streams through.

// Blocks of `width` rows (8 or 32) side by side: out[b][p][u] = in[(width b + u) * depth + p], rows past the end
// repeating the last row (their products are never stored). One work-item: one block, 16 consecutive p.
__kernel void pack_rows(__global const float* in, int io, int rows, int depth, int width, __global float* out)
{
    in += io;
    int p0 = get_global_id(0) * 16, b = get_global_id(1);
    if (p0 >= depth) return;
    int np = min(16, depth - p0);
    __global float* o = out + ((long)b * depth + p0) * width;
    for (int u = 0; u < width; u++)
    {
        __global const float* r = in + (long)min(b * width + u, rows - 1) * depth + p0;
        for (int p = 0; p < np; p++) o[p * width + u] = r[p];
    }
}

// Strips of W consecutive columns (W = 8 or 32) one after another: out[s][r][w] = in[r * cols + W s + w] (0 past the last column).
// One work-item: one strip, 16 consecutive rows.
__kernel void pack_cols(__global const float* in, int io, int rows, int cols, int width, __global float* out)
{
    in += io;
    int r0 = get_global_id(0) * 16, s = get_global_id(1);
    if (r0 >= rows) return;
    int c0 = s * width, nc = min(width, cols - c0);
    __global float* o = out + ((long)s * rows + r0) * width;
    for (int r = r0; r < min(r0 + 16, rows); r++, o += width)
    {
        __global const float* src = in + (long)r * cols + c0;
        if (nc == width) for (int w = 0; w < width; w++) o[w] = src[w];
        else for (int w = 0; w < width; w++) o[w] = w < nc ? src[w] : 0.0f;
    }
}

#define EPI_NONE 0
#define EPI_BIAS_ACT 1
#define EPI_ACT_BACKPROP 2
#define EPI_ROW_SUMS 3

// Packed product: C[r,q] = epilogue(sum_p A(r,p) B(p,q)) for r < rows, q < cols, from A packed as blocks of
// 8 rows (ap[r/8][p][r%8]) and B as strips of 32 columns (bp[q/32][p][q%32]). Epilogues: none;
// bias + activation (aux[q]); times act' from aux[r,q]; or none plus row sums of A into sums[r] (the bias
// gradient of dW = dZ^T H, whose A rows are dZ's columns). One work-item: the 8x32 block (8 gid(0), 32 gid(1)).
__kernel void gemm_packed(__global const float* ap, __global const float* bp, int depth, __global float* c, int co,
                          int rows, int cols, __global const float* aux, int auxo, int epilogue, int act, __global float* sums, int so)
{
    c += co; aux += auxo; sums += so;
    int rb = get_global_id(0), s = get_global_id(1);
    int r0 = rb * 8, q0 = s * 32;
    __global const float* a = ap + (long)rb * depth * 8;
    __global const float* b = bp + (long)s * depth * 32;
    ZERO8(c) ZERO8(d)
    for (int p = 0; p < depth; p++, a += 8, b += 32)
    {
        float16 b0 = RIN16(vload16(0, b)), b1 = RIN16(vload16(0, b + 16));
        OUTER8(c, b0, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
        OUTER8(d, b1, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    }
    int rowsHere = min(8, rows - r0), n = min(32, cols - q0);
    float t[32];
#define STORE_PACKED(u) if (u < rowsHere && n == 32) { \
        long e = (long)(r0 + u) * cols + q0; \
        if (epilogue == EPI_BIAS_ACT) { \
            vstore16(act_apply16(c##u + vload16(0, aux + q0), act), 0, c + e); \
            vstore16(act_apply16(d##u + vload16(0, aux + q0 + 16), act), 0, c + e + 16); } \
        else if (epilogue == EPI_ACT_BACKPROP) { \
            vstore16(act_backprop16(c##u, vload16(0, aux + e), act), 0, c + e); \
            vstore16(act_backprop16(d##u, vload16(0, aux + e + 16), act), 0, c + e + 16); } \
        else { vstore16(c##u, 0, c + e); vstore16(d##u, 0, c + e + 16); } } \
    else if (u < rowsHere) { \
        long e = (long)(r0 + u) * cols + q0; \
        vstore16(c##u, 0, t); vstore16(d##u, 0, t + 16); \
        if (epilogue == EPI_BIAS_ACT) for (int v = 0; v < n; v++) c[e + v] = act_apply(t[v] + aux[q0 + v], act); \
        else if (epilogue == EPI_ACT_BACKPROP) for (int v = 0; v < n; v++) c[e + v] = act_backprop(t[v], aux[e + v], act); \
        else for (int v = 0; v < n; v++) c[e + v] = t[v]; }
    STORE_PACKED(0) STORE_PACKED(1) STORE_PACKED(2) STORE_PACKED(3) STORE_PACKED(4) STORE_PACKED(5) STORE_PACKED(6) STORE_PACKED(7)
    if (epilogue == EPI_ROW_SUMS && s == 0)
    {
        float8 sum = 0;
        a = ap + (long)rb * depth * 8;
        for (int p = 0; p < depth; p++) sum += vload8(p, a);
        vstore8(sum, 0, t);
        for (int u = 0; u < rowsHere; u++) sums[r0 + u] = t[u];
    }
}
