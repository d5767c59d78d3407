/**
 * The distribution functions the drift tests need (chi-square, normal, Kolmogorov–Smirnov), in
 * double precision. The Kolmogorov–Smirnov parts follow scipy 1.17 branch for branch
 * (scipy.stats.ks_2samp's `auto` method and scipy.stats.kstwo.sf), so a p-value here is the one
 * a data scientist gets from scipy on the same numbers; test/fixtures/drift-scipy.json holds them.
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** log Γ(x) for x > 0 (Lanczos, g = 7: about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

const EPS = 1e-16;
const TINY = 1e-300;

/** Regularized upper incomplete gamma Q(a, x): series below a + 1, continued fraction above. */
export function upperGamma(a: number, x: number): number {
  if (x <= 0) return 1;
  if (!Number.isFinite(x)) return 0;
  const logPrefix = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 100_000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * EPS) break;
    }
    return Math.max(0, 1 - sum * Math.exp(logPrefix));
  }
  // Lentz's method for the continued fraction of Γ(a, x).
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 100_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(logPrefix) * h;
}

/** P(χ²(df) > x), scipy.stats.chi2.sf. */
export function chiSquareSf(x: number, df: number): number {
  return upperGamma(df / 2, x / 2);
}

/** The x with P(χ²(df) > x) = q, scipy.stats.chi2.isf (bisection: the sf is monotone). */
export function chiSquareIsf(q: number, df: number): number {
  let lo = 0;
  let hi = Math.max(1, df);
  while (chiSquareSf(hi, df) > q) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (chiSquareSf(mid, df) > q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** P(Z > z) of the standard normal, scipy.stats.norm.sf: Q(1/2, z²/2) / 2 keeps the far tail exact. */
export function normalSf(z: number): number {
  const half = 0.5 * upperGamma(0.5, (z * z) / 2);
  return z >= 0 ? half : 1 - half;
}

function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/**
 * One-sided Smirnov P(D⁺ₙ ≥ x), exact (Birnbaum–Tingey sum, scipy.special.smirnov); the terms
 * are all positive, so summing them in logs loses nothing to cancellation.
 */
export function smirnovSf(n: number, x: number): number {
  if (x <= 0) return 1;
  if (x >= 1) return 0;
  const last = Math.floor(n * (1 - x) + 1e-12);
  let sum = 0;
  for (let j = 0; j <= last; j++) {
    const rest = 1 - x - j / n;
    if (rest < 0) break;
    const logTerm = logChoose(n, j) + (j - 1) * Math.log(x + j / n) + (n - j === 0 ? 0 : (n - j) * Math.log(rest));
    sum += Math.exp(logTerm);
  }
  return Math.min(1, Math.max(0, x * sum));
}

// B₂ⱼ / (2j(2j − 1)) for j = 8..1, Stirling series of log n! (scipy's _STIRLING_COEFFS).
const STIRLING = [
  -0.029550653594771242, 0.00641025641025641, -0.0019175269175269176, 0.0008417508417508417, -0.0005952380952380953,
  0.0007936507936507937, -0.002777777777777778, 0.08333333333333333,
];

function logFactorialOverPower(n: number): number {
  const rn = 1 / n;
  let poly = 0;
  for (const c of STIRLING) poly = poly * (rn / n) + c;
  return Math.log(n) / 2 - n + Math.log(2 * Math.PI) / 2 + rn * poly;
}

const SCALE_EXP = 128;
const SCALE = 2 ** SCALE_EXP;

function matMul(a: Float64Array, b: Float64Array, m: number): Float64Array {
  const out = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < m; k++) {
      const aik = a[i * m + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < m; j++) out[i * m + j]! += aik * b[k * m + j]!;
    }
  }
  return out;
}

/**
 * P(Dₙ ≤ d) exactly by Durbin's matrix (Marsaglia–Tsang–Wang), scipy's _kolmogn_DMTW. Where scipy
 * uses Pomeranz's recursion (n ≤ 140, 0.754693 < nd² ≤ 4) this is used too: both are exact, and
 * the matrix stays small there (2⌈nd⌉ − 1 ≤ 47 rows).
 */
export function kolmogorovCdfDurbin(n: number, d: number): number {
  if (d >= 1) return 1;
  const nd = n * d;
  if (nd <= 0.5) return 0;
  const k = Math.ceil(nd);
  const h = k - nd;
  const m = 2 * k - 1;
  const v = new Float64Array(m);
  const w = new Float64Array(m);
  let fac = 1;
  for (let j = 1; j <= m; j++) {
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] = (1 - h ** j) * fac;
  }
  const tt = Math.max(2 * h - 1, 0) ** m - 2 * h ** m;
  v[m - 1] = (1 + tt) * fac;
  let H: Float64Array = new Float64Array(m * m);
  for (let i = 1; i < m; i++) {
    for (let r = i - 1; r < m; r++) H[r * m + i] = w[r - (i - 1)]!;
  }
  for (let r = 0; r < m; r++) H[r * m] = v[r]!;
  for (let c = 0; c < m; c++) H[(m - 1) * m + c] = v[m - 1 - c]!;
  let power: Float64Array = new Float64Array(m * m);
  for (let i = 0; i < m; i++) power[i * m + i] = 1;
  let exponent = 0;
  let hExponent = 0;
  for (let nn = n; nn > 0; nn = Math.floor(nn / 2)) {
    if (nn % 2) {
      power = matMul(power, H, m);
      exponent += hExponent;
    }
    H = matMul(H, H, m);
    hExponent *= 2;
    if (Math.abs(H[(k - 1) * m + (k - 1)]!) > SCALE) {
      for (let i = 0; i < H.length; i++) H[i]! /= SCALE;
      hExponent += SCALE_EXP;
    }
  }
  let p = power[(k - 1) * m + (k - 1)]!;
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n;
    if (Math.abs(p) < 1 / SCALE) {
      p *= SCALE;
      exponent -= SCALE_EXP;
    }
  }
  return p * 2 ** exponent;
}

/** Pelz–Good's asymptotic P(Dₙ ≤ x), scipy's _kolmogn_PelzGood. */
export function kolmogorovCdfPelzGood(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const z = Math.sqrt(n) * x;
  const z2 = z * z;
  const z4 = z2 * z2;
  const z6 = z4 * z2;
  const pi2 = Math.PI ** 2;
  const pi4 = pi2 * pi2;
  const pi6 = pi4 * pi2;
  const qlog = -pi2 / 8 / z2;
  if (qlog < -708) return 0;
  let q = Math.exp(qlog);
  const k1a = -z2;
  const k1b = pi2 / 4;
  const k2a = 6 * z6 + 2 * z4;
  const k2b = ((2 * z4 - 5 * z2) * pi2) / 4;
  const k2c = (pi4 * (1 - 2 * z2)) / 16;
  const k3d = (pi6 * (5 - 30 * z2)) / 64;
  const k3c = (pi4 * (-60 * z2 + 212 * z4)) / 16;
  const k3b = (pi2 * (135 * z4 - 96 * z6)) / 4;
  const k3a = -30 * z6 - 90 * z ** 8;
  const K = [0, 0, 0, 0];
  const maxk = Math.ceil((16 * z) / Math.PI);
  for (let k = maxk; k > 0; k--) {
    const m = 2 * k - 1;
    const m2 = m * m;
    const m4 = m2 * m2;
    const m6 = m4 * m2;
    const qpower = q ** (8 * k);
    const coeffs = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
    for (let i = 0; i < 4; i++) K[i] = K[i]! * qpower + coeffs[i]!;
  }
  const sqrt2pi = Math.sqrt(2 * Math.PI);
  const denominators = [z, 6 * z4, 72 * z ** 7, 6480 * z ** 10];
  for (let i = 0; i < 4; i++) K[i] = (K[i]! * q * sqrt2pi) / denominators[i]!;
  q = Math.exp(-pi2 / 2 / z2);
  const sqrt3z = Math.sqrt(3) * z;
  let k2extra = 0;
  let k3extra = 0;
  for (let k = maxk; k > 0; k--) {
    const k2 = k * k;
    const qp = q ** k2;
    k2extra += k2 * qp;
    const kpi = Math.PI * k;
    k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qp;
  }
  K[2] = K[2]! + (k2extra * pi2 * sqrt2pi) / (-36 * z ** 3);
  K[3] = K[3]! + (k3extra * pi2 * sqrt2pi) / (216 * z6);
  let sum = 0;
  for (let i = 0; i < 4; i++) sum += K[i]! / n ** (i / 2);
  return sum;
}

const clip = (p: number): number => Math.min(1, Math.max(0, p));

/** P(Dₙ > x) of the two-sided one-sample statistic, scipy.stats.kstwo.sf (Simard & L'Ecuyer's choice of method). */
export function kolmogorovSf(n: number, x: number): number {
  if (x >= 1) return 0;
  if (x <= 0) return 1;
  const t = n * x;
  if (t <= 1) {
    if (t <= 0.5) return 1;
    let cdf: number;
    if (n <= 140) {
      cdf = 1;
      for (let i = 1; i <= n; i++) cdf *= (i / n) * (2 * t - 1);
    } else {
      cdf = Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1));
    }
    return clip(1 - cdf);
  }
  if (t >= n - 1) return clip(2 * (1 - x) ** n);
  if (x >= 0.5) return clip(2 * smirnovSf(n, x));
  const nx2 = t * x;
  if (n <= 140) {
    if (nx2 <= 4) return clip(1 - kolmogorovCdfDurbin(n, x));
    return clip(2 * smirnovSf(n, x));
  }
  if (nx2 >= 370) return 0;
  if (nx2 >= 2.2) return clip(2 * smirnovSf(n, x));
  if (n <= 100_000 && n * x ** 1.5 <= 1.4) return clip(1 - kolmogorovCdfDurbin(n, x));
  return clip(1 - kolmogorovCdfPelzGood(n, x));
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** P(D_{n,n} ≥ h/n), scipy's _compute_prob_outside_square (Horner form, no cancellation). */
function probOutsideSquare(n: number, h: number): number {
  let p = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let p1 = 1;
    for (let j = 0; j < h; j++) p1 = ((n - k * h - j) * p1) / (n + k * h + j + 1);
    p = p1 * (1 - p);
  }
  return 2 * p;
}

/**
 * P(D_{m,n} ≥ h/lcm): one minus the share of lattice paths from (0, 0) to (m, n) that stay strictly
 * inside |x·n/g − y·m/g| < h (scipy's _compute_outer_prob_inside_method). The recurrence is
 * carried divided by C(x + y, y), so every cell is a probability and nothing overflows.
 */
function probOutsideBand(m: number, n: number, g: number, h: number): number {
  if (m < n) [m, n] = [n, m];
  const mg = m / g;
  const ng = n / g;
  let prev: Float64Array = new Float64Array(n + 1);
  let cur: Float64Array = new Float64Array(n + 1);
  // Column x = 0: (0, y) is inside while y·mg < h.
  for (let y = 0; y <= n && y * mg < h; y++) prev[y] = 1;
  let prevLo = 0;
  let prevHi = Math.min(n, Math.ceil(h / mg) - 1);
  for (let x = 1; x <= m; x++) {
    const lo = Math.max(Math.floor((ng * x - h) / mg) + 1, 0);
    const hi = Math.min(Math.ceil((ng * x + h) / mg) - 1, n);
    if (hi < lo) return 1;
    let below = 0; // B(x, lo - 1) is outside the band
    for (let y = lo; y <= hi; y++) {
      const left = y >= prevLo && y <= prevHi ? prev[y]! : 0;
      const value = (left * x + below * y) / (x + y);
      cur[y] = value;
      below = value;
    }
    [prev, cur] = [cur, prev];
    prevLo = lo;
    prevHi = hi;
  }
  return prevHi === n ? clip(1 - prev[n]!) : 1;
}

/** scipy switches from exact to asymptotic above this size (ks_2samp's MAX_AUTO_N). */
export const KS_EXACT_MAX_N = 10_000;

/**
 * Two-sided p-value of a two-sample KS statistic d for sample sizes n1, n2, as
 * scipy.stats.ks_2samp(method='auto'): exact when both samples hold at most 10,000 values (d
 * rounded to the lattice h/lcm first, as scipy does), else kstwo.sf(d, round(n1·n2/(n1+n2))).
 */
export function ksTwoSamplePValue(d: number, n1: number, n2: number): number {
  if (Math.max(n1, n2) <= KS_EXACT_MAX_N) {
    const g = gcd(n1, n2);
    const lcm = (n1 / g) * n2;
    const h = Math.round(d * lcm);
    if (h === 0) return 1;
    const p = n1 === n2 ? probOutsideSquare(n1, h) : probOutsideBand(n1, n2, g, h);
    if (p >= 0 && p <= 1) return p;
  }
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1];
  return clip(kolmogorovSf(Math.round((m * n) / (m + n)), d));
}
