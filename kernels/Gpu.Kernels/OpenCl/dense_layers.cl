// Dense-layer products in OpenCL C for OpenCL CPU devices (POCL): the "cl-vector" GEMM family.
// LLVM turns the explicit float16 arithmetic into 512-bit (or 2x256-bit) vector code regardless of how
// the driver groups work-items, which ILGPU's generated OpenCL C cannot express (it has no vector
// types and no fma). Row-major float32 throughout; every buffer comes with an element offset (the
// ILGPU view's index into its buffer). Any shape: edge blocks clamp their loads and guard their stores.

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

// Forward dense layer: Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]). One work-item: a 4x4 block of Y at
// (row 4*gid(1), column 4*gid(0)), each of its 16 dot products kept as 16 partial sums along k.
__kernel void dense_forward(__global const float* x, int xo, __global const float* w, int wo,
                            __global const float* b, int bo, __global float* y, int yo, int m, int n, int k, int act)
{
    x += xo; w += wo; b += bo; y += yo;
    int j0 = get_global_id(0) * 4, i0 = get_global_id(1) * 4;
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
        float16 a0 = vload16(0, x0 + p), a1 = vload16(0, x1 + p), a2 = vload16(0, x2 + p), a3 = vload16(0, x3 + p);
        float16 c0 = vload16(0, w0 + p), c1 = vload16(0, w1 + p), c2 = vload16(0, w2 + p), c3 = vload16(0, w3 + p);
        s00 = fma(a0, c0, s00); s01 = fma(a0, c1, s01); s02 = fma(a0, c2, s02); s03 = fma(a0, c3, s03);
        s10 = fma(a1, c0, s10); s11 = fma(a1, c1, s11); s12 = fma(a1, c2, s12); s13 = fma(a1, c3, s13);
        s20 = fma(a2, c0, s20); s21 = fma(a2, c1, s21); s22 = fma(a2, c2, s22); s23 = fma(a2, c3, s23);
        s30 = fma(a3, c0, s30); s31 = fma(a3, c1, s31); s32 = fma(a3, c2, s32); s33 = fma(a3, c3, s33);
    }
    if (p < k)   // the last k % 16 columns, zero-padded
    {
        int r = k - p;
        float16 a0 = load_part(x0 + p, r), a1 = load_part(x1 + p, r), a2 = load_part(x2 + p, r), a3 = load_part(x3 + p, r);
        float16 c0 = load_part(w0 + p, r), c1 = load_part(w1 + p, r), c2 = load_part(w2 + p, r), c3 = load_part(w3 + p, r);
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

// One step of the outer-product loop: the 8 block rows' A values (a0..a7) times the 16 columns in bv.
#define OUTER8(c, bv) \
    c##0 = fma((float16)(av.s0), bv, c##0); c##1 = fma((float16)(av.s1), bv, c##1); \
    c##2 = fma((float16)(av.s2), bv, c##2); c##3 = fma((float16)(av.s3), bv, c##3); \
    c##4 = fma((float16)(av.s4), bv, c##4); c##5 = fma((float16)(av.s5), bv, c##5); \
    c##6 = fma((float16)(av.s6), bv, c##6); c##7 = fma((float16)(av.s7), bv, c##7);
#define ZERO8(c) float16 c##0 = 0, c##1 = 0, c##2 = 0, c##3 = 0, c##4 = 0, c##5 = 0, c##6 = 0, c##7 = 0;

// Weight gradient: dW[n,k] = dZ[m,n]^T . H[m,k], and, when withBias != 0, db[n] = column sums of dZ.
// One work-item: an 8x32 block of dW at (row 8*gid(1), column 32*gid(0)), summing outer products of
// 8 consecutive dZ values (one vector load) and 32 consecutive H values over the m batch rows.
__kernel void weight_grad(__global const float* dz, int dzo, __global const float* h, int ho,
                          __global float* dw, int dwo, __global float* db, int dbo, int m, int n, int k, int withBias)
{
    dz += dzo; h += ho; dw += dwo; db += dbo;
    int q0 = get_global_id(0) * 32, r0 = get_global_id(1) * 8;
    if (r0 >= n || q0 >= k) return;
    int rows = min(8, n - r0), n0 = min(16, k - q0), n1 = clamp(k - q0 - 16, 0, 16);
    ZERO8(c) ZERO8(d)
    float8 bias = 0;
    for (int i = 0; i < m; i++)
    {
        __global const float* zr = dz + (long)i * n + r0;
        float8 av;
        if (rows == 8) av = vload8(0, zr);
        else { float t[8]; for (int u = 0; u < 8; u++) t[u] = u < rows ? zr[u] : 0.0f; av = vload8(0, t); }
        bias += av;
        __global const float* hr = h + (long)i * k + q0;
        if (n1 == 16) { float16 b0 = vload16(0, hr), b1 = vload16(0, hr + 16); OUTER8(c, b0) OUTER8(d, b1) }
        else if (n1 == 0 && n0 == 16) { float16 b0 = vload16(0, hr); OUTER8(c, b0) }
        else { float16 b0 = load_part(hr, n0), b1 = load_part(hr + 16, n1); OUTER8(c, b0) OUTER8(d, b1) }
    }
    __global float* out = dw + (long)r0 * k + q0;
#define STORE_ROW(u) if (u < rows) { store_part(c##u, out + (long)u * k, n0); if (n1 > 0) store_part(d##u, out + (long)u * k + 16, n1); }
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5) STORE_ROW(6) STORE_ROW(7)
    if (withBias != 0 && q0 == 0)
    {
        float t[8];
        vstore8(bias, 0, t);
        for (int u = 0; u < rows; u++) db[r0 + u] = t[u];
    }
}

// Input gradient through the previous layer's activation: dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]).
// One work-item: an 8x32 block of dX at (row 8*gid(1), column 32*gid(0)), summing outer products of
// 8 dZ values (one per block row) and 32 consecutive W values over the n units, four units at a time.
__kernel void input_grad(__global const float* dz, int dzo, __global const float* w, int wo,
                         __global const float* h, int ho, __global float* dx, int dxo, int m, int n, int k, int act)
{
    dz += dzo; w += wo; h += ho; dx += dxo;
    int q0 = get_global_id(0) * 32, r0 = get_global_id(1) * 8;
    if (r0 >= m || q0 >= k) return;
    int rows = min(8, m - r0), n0 = min(16, k - q0), n1 = clamp(k - q0 - 16, 0, 16);
    __global const float* z0 = dz + (long)r0 * n;
    __global const float* z1 = dz + (long)min(r0 + 1, m - 1) * n;
    __global const float* z2 = dz + (long)min(r0 + 2, m - 1) * n;
    __global const float* z3 = dz + (long)min(r0 + 3, m - 1) * n;
    __global const float* z4 = dz + (long)min(r0 + 4, m - 1) * n;
    __global const float* z5 = dz + (long)min(r0 + 5, m - 1) * n;
    __global const float* z6 = dz + (long)min(r0 + 6, m - 1) * n;
    __global const float* z7 = dz + (long)min(r0 + 7, m - 1) * n;
    ZERO8(c) ZERO8(d)
    for (int p = 0; p < n; p++)
    {
        float8 av = (float8)(z0[p], z1[p], z2[p], z3[p], z4[p], z5[p], z6[p], z7[p]);
        __global const float* wr = w + (long)p * k + q0;
        if (n1 == 16) { float16 b0 = vload16(0, wr), b1 = vload16(0, wr + 16); OUTER8(c, b0) OUTER8(d, b1) }
        else if (n1 == 0 && n0 == 16) { float16 b0 = vload16(0, wr); OUTER8(c, b0) }
        else { float16 b0 = load_part(wr, n0), b1 = load_part(wr + 16, n1); OUTER8(c, b0) OUTER8(d, b1) }
    }
    float t[32];
#define STORE_MASKED(u) if (u < rows) { \
        long e = (long)(r0 + u) * k + q0; \
        vstore16(c##u, 0, t); vstore16(d##u, 0, t + 16); \
        for (int v = 0; v < n0 + n1; v++) dx[e + v] = act_backprop(t[v], h[e + v], act); }
    STORE_MASKED(0) STORE_MASKED(1) STORE_MASKED(2) STORE_MASKED(3) STORE_MASKED(4) STORE_MASKED(5) STORE_MASKED(6) STORE_MASKED(7)
}
