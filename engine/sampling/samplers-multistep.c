/* engine/sampling/samplers-multistep.c: linear multistep and predictor-corrector samplers: lms,
 * iPNDM (+ variable step), DEIS (tab), res_multistep (and its ancestral/CFG++ forms), SA-Solver
 * (+ PECE) from ComfyUI's comfy/k_diffusion/{sampling,deis,sa_solver}.py (02159d81), and UniPC
 * (bh1/bh2) from comfy/extra_samplers/uni_pc.py (multistep, data prediction, sigma-based noise
 * schedule, lower order at the end). Coefficients are computed in float64 each step.
 *
 * Shapes: x and every buffer hold c->n floats; sigmas holds n_sigmas values. */
#include "samplers-private.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"

#define N_STEPS ((guint) (n_sigmas - 1))
#define MAX_ORDER 8

/* Rotates a history of derivative buffers: hist[0] newest. */
static void
history_push (float **hist, int cap, float **spare)
{
  float *oldest = hist[cap - 1];
  memmove (hist + 1, hist, (cap - 1) * sizeof (float *));
  hist[0] = *spare;
  *spare = oldest;
}

gboolean
easel_sample_lms (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                  gsize n_sigmas, GError **error)
{
  float *b[MAX_ORDER + 2], *hist[MAX_ORDER], *spare, *den;
  g_autofree float *block = NULL;
  int order = CLAMP (o->order, 1, MAX_ORDER);
  double coeff[MAX_ORDER];

  block = easel_sampling_buffers (c->n, order + 2, b);
  den = b[0];
  spare = b[1];
  for (int j = 0; j < order; j++)
    hist[j] = b[2 + j];
  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i];
    int cur = MIN ((int) i + 1, order);
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++)
      spare[k] = (float) ((x[k] - den[k]) / s);
    history_push (hist, order, &spare);
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (sigmas[i + 1] == 0.0f && o->flavor == EASEL_SAMPLER_FLAVOR_COMFYUI) {
      memcpy (x, den, c->n * sizeof (float));
      continue;
    }
    for (int j = 0; j < cur; j++)
      coeff[j] = easel_sampling_lms_coeff (cur, sigmas, i, j);
    for (gsize k = 0; k < c->n; k++) {
      double v = x[k];
      for (int j = 0; j < cur; j++)
        v += coeff[j] * hist[j][k];
      x[k] = (float) v;
    }
  }
  return TRUE;
}

/* iPNDM, fixed (variable = FALSE) or variable step coefficients; DEIS passes its own. */
static gboolean
ipndm_common (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas, gsize n_sigmas,
              int kind, GError **error);

gboolean
easel_sample_ipndm (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                    gsize n_sigmas, GError **error)
{
  return ipndm_common (c, o, x, sigmas, n_sigmas, 0, error);
}

gboolean
easel_sample_ipndm_v (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                      gsize n_sigmas, GError **error)
{
  return ipndm_common (c, o, x, sigmas, n_sigmas, 1, error);
}

gboolean
easel_sample_deis (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                   gsize n_sigmas, GError **error)
{
  return ipndm_common (c, o, x, sigmas, n_sigmas, 2, error);
}

/* The coefficients (already times the step) of d_cur, d[-1], d[-2], d[-3] for iPNDM. */
static void
ipndm_coeffs (int order, double dt, double *w)
{
  static const double table[4][4] = {
    { 1, 0, 0, 0 }, { 3.0 / 2, -1.0 / 2, 0, 0 }, { 23.0 / 12, -16.0 / 12, 5.0 / 12, 0 },
    { 55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24 },
  };
  for (int j = 0; j < 4; j++)
    w[j] = dt * table[order - 1][j];
}

/* iPNDM with variable steps (ipndm_v): h_n = t_next - t_cur, h_n_k = t[i-k+1] - t[i-k]. */
static void
ipndm_v_coeffs (int order, const float *t, guint i, double *w)
{
  double hn = (double) t[i + 1] - t[i], h1, h2, h3, temp1, temp2, q, q2;
  memset (w, 0, 4 * sizeof (double));
  if (order == 1) {
    w[0] = hn;
    return;
  }
  h1 = (double) t[i] - t[i - 1];
  if (order == 2) {
    w[0] = hn * (2 + hn / h1) / 2;
    w[1] = hn * (-(hn / h1) / 2);
    return;
  }
  h2 = (double) t[i - 1] - t[i - 2];
  temp1 = (1 - hn / (3 * (hn + h1)) * (hn * (hn + h1)) / (h1 * (h1 + h2))) / 2;
  if (order == 3) {
    w[0] = hn * ((2 + hn / h1) / 2 + temp1);
    w[1] = hn * (-(hn / h1) / 2 - (1 + h1 / h2) * temp1);
    w[2] = hn * (temp1 * h1 / h2);
    return;
  }
  h3 = (double) t[i - 2] - t[i - 3];
  temp2 = ((1 - hn / (3 * (hn + h1))) / 2 + (1 - hn / (2 * (hn + h1))) * hn / (6 * (hn + h1 + h2)))
          * (hn * (hn + h1) * (hn + h1 + h2)) / (h1 * (h1 + h2) * (h1 + h2 + h3));
  q = h1 / h2;
  q2 = h1 * (h1 + h2) / (h2 * (h2 + h3));
  w[0] = hn * ((2 + hn / h1) / 2 + temp1 + temp2);
  w[1] = hn * (-(hn / h1) / 2 - (1 + q) * temp1 - (1 + q + q2) * temp2);
  w[2] = hn * (temp1 * q + (q + q2 * (1 + h2 / h3)) * temp2);
  w[3] = hn * (-temp2 * q2 * q);
}

/* DEIS 'tab' (zju-pi/diff-sampler gits-main/solver_utils.py, as ComfyUI's deis.py): sigmas map to
 * VP time t with beta_d, beta_min fitted to EDM's (0.002, 80, eps 1e-3); coefficient j is the
 * Riemann sum over N = 10000 points of linspace(t_cur, t_next) of the exponential integrand times
 * the Lagrange basis j through t[i], ..., t[i-order+1], times (t_next - t_cur) / N. */
static double
deis_t (double sigma, double beta_min, double beta_d)
{
  return (sqrt (beta_min * beta_min + 2.0 * beta_d * log (sigma * sigma + 1.0)) - beta_min) / beta_d;
}

static void
deis_coeffs (int order, const float *sigmas, guint i, double *w)
{
  const int N = 10000;
  const double eps_s = 1e-3, smin = 0.002, smax = 80.0;
  double beta_d = 2.0 * (log (smin * smin + 1.0) / eps_s - log (smax * smax + 1.0)) / (eps_s - 1.0);
  double beta_min = log (smax * smax + 1.0) - 0.5 * beta_d, beta_0 = beta_min, beta_1 = beta_d + beta_min;
  double prev[4], t_cur, t_next, dtau;

  memset (w, 0, 4 * sizeof (double));
  for (int k = 0; k < order; k++)
    prev[k] = deis_t (sigmas[i - k], beta_min, beta_d);
  t_cur = prev[0];
  t_next = deis_t (sigmas[i + 1], beta_min, beta_d);
  dtau = (t_next - t_cur) / N;
  for (int q = 0; q < N; q++) {
    double tau = q < N / 2 ? t_cur + (t_next - t_cur) / (N - 1) * q : t_next - (t_next - t_cur) / (N - 1) * (N - 1 - q);
    double alpha = exp (-0.5 * tau * tau * (beta_1 - beta_0) - tau * beta_0);
    double dlog = -(tau * (beta_1 - beta_0) + beta_0);
    double integrand = -0.5 * dlog / sqrt (alpha * (1.0 - alpha));
    for (int j = 0; j < order; j++) {
      double poly = 1.0;
      for (int k = 0; k < order; k++)
        if (k != j)
          poly *= (tau - prev[k]) / (prev[j] - prev[k]);
      w[j] += integrand * poly;
    }
  }
  for (int j = 0; j < order; j++)
    w[j] *= dtau;
}

static gboolean
ipndm_common (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas, gsize n_sigmas,
              int kind, GError **error)
{
  float *b[5], *hist[4], *spare, *den;
  g_autofree float *block = easel_sampling_buffers (c->n, 5, b);
  int max_order = CLAMP (o->order, 1, 4);
  double w[4];

  den = b[0];
  spare = b[1];
  hist[0] = b[2];
  hist[1] = b[3];
  hist[2] = b[4];
  for (guint i = 0; i < N_STEPS; i++) {
    double t_cur = sigmas[i], t_next = sigmas[i + 1];
    int order = MIN (max_order, (int) i + 1);
    if (!easel_sampling_denoise (c, x, t_cur, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    for (gsize k = 0; k < c->n; k++)
      spare[k] = (float) ((x[k] - den[k]) / t_cur);    /* d_cur */
    if (kind == 2 && t_next <= 0.0)
      order = 1;
    if (kind != 2 && t_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
    } else {
      if (kind == 0)
        ipndm_coeffs (order, t_next - t_cur, w);
      else if (kind == 1)
        ipndm_v_coeffs (order, sigmas, i, w);
      else if (order == 1)
        ipndm_coeffs (1, t_next - t_cur, w);
      else
        deis_coeffs (order, sigmas, i, w);
      for (gsize k = 0; k < c->n; k++) {
        double v = x[k] + w[0] * spare[k];
        for (int j = 1; j < order; j++)
          v += w[j] * hist[j - 1][k];
        x[k] = (float) v;
      }
    }
    if (max_order > 1)
      history_push (hist, max_order - 1, &spare);
  }
  return TRUE;
}

/* Second-order multistep exponential integrator (RES, arXiv 2308.02157) with ancestral noise. */
gboolean
easel_sample_res_multistep (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                            gsize n_sigmas, GError **error)
{
  float *b[4];
  g_autofree float *block = easel_sampling_buffers (c->n, 4, b);
  float *den = b[0], *unc = b[1], *old = b[2], *noise = b[3];
  double old_down = 0.0;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1], down, up;
    if (!easel_sampling_denoise (c, x, s, i, den, o->cfg_pp ? unc : NULL, error))
      return FALSE;
    easel_sampling_ancestral_step (s, s_next, o->eta, &down, &up);
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (down == 0.0 || i == 0) {
      for (gsize k = 0; k < c->n; k++) {
        if (o->cfg_pp)
          x[k] = (float) (den[k] + (x[k] - unc[k]) / s * down);
        else
          x[k] = (float) (x[k] + (x[k] - den[k]) / s * (down - s));
      }
    } else {
      double t = -log (s), t_old = -log (old_down), t_next = -log (down), t_prev = -log (sigmas[i - 1]);
      double h = t_next - t, c2 = (t_prev - t_old) / h;
      double phi1 = expm1 (-h) / -h, phi2 = (phi1 - 1.0) / -h;
      double b1 = phi1 - phi2 / c2, b2 = phi2 / c2, eh = exp (-h);
      if (isnan (b1))
        b1 = 0.0;
      if (isnan (b2))
        b2 = 0.0;
      for (gsize k = 0; k < c->n; k++) {
        if (o->cfg_pp)
          x[k] = (float) (eh * (x[k] + (den[k] - unc[k])) + h * (b1 * unc[k] + b2 * old[k]));
        else
          x[k] = (float) (eh * x[k] + h * (b1 * den[k] + b2 * old[k]));
      }
    }
    if (s_next > 0.0) {
      if (!easel_sampling_noise (c, s, s_next, noise, error))
        return FALSE;
      for (gsize k = 0; k < c->n; k++)
        x[k] += (float) (noise[k] * o->s_noise * up);
    }
    memcpy (old, o->cfg_pp ? unc : den, c->n * sizeof (float));
    old_down = down;
  }
  return TRUE;
}

/* --- SA-Solver ----------------------------------------------------------------------------------- */

/* Solves a (K x K, row-major, K <= MAX_ORDER) x = rhs in place by Gaussian elimination with partial
 * pivoting; FALSE when singular. */
static gboolean
solve_small (double *a, double *rhs, int K)
{
  for (int col = 0; col < K; col++) {
    int piv = col;
    for (int r = col + 1; r < K; r++)
      if (fabs (a[r * K + col]) > fabs (a[piv * K + col]))
        piv = r;
    if (a[piv * K + col] == 0.0 || !isfinite (a[piv * K + col]))
      return FALSE;
    if (piv != col) {
      for (int j = 0; j < K; j++) {
        double t = a[col * K + j];
        a[col * K + j] = a[piv * K + j];
        a[piv * K + j] = t;
      }
      double t = rhs[col];
      rhs[col] = rhs[piv];
      rhs[piv] = t;
    }
    for (int r = col + 1; r < K; r++) {
      double f = a[r * K + col] / a[col * K + col];
      for (int j = col; j < K; j++)
        a[r * K + j] -= f * a[col * K + j];
      rhs[r] -= f * rhs[col];
    }
  }
  for (int r = K - 1; r >= 0; r--) {
    double v = rhs[r];
    for (int j = r + 1; j < K; j++)
      v -= a[r * K + j] * rhs[j];
    rhs[r] = v / a[r * K + r];
  }
  return TRUE;
}

/* compute_stochastic_adams_b_coeffs (not the simple order-2 scheme): the integrals over
 * [lambda_s, lambda_t] of (1 + tau^2) e^((1 + tau^2)(l - lambda_t)) times the Lagrange basis
 * through lambdas[0..K) -> b[0..K), times alpha_t = 1. */
static gboolean
sa_b_coeffs (const double *lambdas, int K, double ls, double lt, double tau, double *b)
{
  double tau_mul = 1.0 + tau * tau, h = lt - ls, prod[MAX_ORDER], V[MAX_ORDER * MAX_ORDER];
  for (int p = 0; p < K; p++)
    prod[p] = pow (lt, p) - pow (ls, p) * exp (-tau_mul * h);
  for (int i = 0; i < K; i++) {    /* exponential integrals by recursive integration by parts */
    double e = 0.0;
    for (int j = 0; j <= i; j++) {
      double lc = lgamma (i + 1.0) - lgamma (j + 1.0);
      if (tau > 0.0)
        lc -= (i - j) * log (tau_mul);
      e += ((i - j) % 2 == 0 ? 1.0 : -1.0) * exp (lc) * prod[j];
    }
    b[i] = e;
  }
  for (int p = 0; p < K; p++)      /* transposed Vandermonde: row p = lambdas^p */
    for (int a = 0; a < K; a++)
      V[p * K + a] = pow (lambdas[a], p);
  return solve_small (V, b, K);
}

gboolean
easel_sample_sa_solver (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                        gsize n_sigmas, GError **error)
{
  int pred_order = CLAMP (o->order, 1, MAX_ORDER), corr_order = CLAMP (o->corrector_order, 1, MAX_ORDER);
  int max_used = MAX (pred_order, corr_order), n_list = 0;
  float *b[MAX_ORDER + 3], *list[MAX_ORDER], *spare, *x_pred, *noise;
  g_autofree float *block = easel_sampling_buffers (c->n, max_used + 3, b);
  g_autofree double *lambdas = g_new (double, n_sigmas);
  double start_sigma, end_sigma, tau_t = 0.0, h = 0.0, coef[MAX_ORDER];
  gboolean lower_order_to_end = sigmas[n_sigmas - 1] == 0.0f, have_noise = FALSE;

  /* b[2 .. 2 + max_used]: the predictions list[0..n_list) (oldest first) and one spare */
  x_pred = b[0];
  noise = b[1];
  spare = b[2];
  start_sigma = easel_model_sampling_percent_to_sigma (c->model_sampling, 0.2);
  end_sigma = easel_model_sampling_percent_to_sigma (c->model_sampling, 0.8);
  for (gsize i = 0; i < n_sigmas; i++)
    lambdas[i] = -log (sigmas[i]);
  memcpy (x_pred, x, c->n * sizeof (float));

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1];
    int pred_used, corr_used;
    float *den;
    /* evaluation: the newest prediction goes last in list[0..n_list) */
    if (n_list == max_used) {
      float *oldest = list[0];
      memmove (list, list + 1, (max_used - 1) * sizeof (float *));
      list[max_used - 1] = spare;
      spare = oldest;
    } else {
      list[n_list++] = spare;
      spare = b[2 + n_list];
    }
    den = list[n_list - 1];
    if (!easel_sampling_denoise (c, x_pred, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x_pred, den);
    pred_used = MIN (pred_order, n_list);
    corr_used = (i == 0 || (s_next == 0.0 && !o->pece)) ? 0 : MIN (corr_order, n_list);
    if (lower_order_to_end) {
      pred_used = MIN (pred_used, (int) (n_sigmas - 2) - (int) i);
      corr_used = MIN (corr_used, (int) (n_sigmas - 1) - (int) i);
    }
    /* corrector */
    if (corr_used <= 0) {
      memcpy (x, x_pred, c->n * sizeof (float));
    } else {
      double decay = s / sigmas[i - 1] * exp (-(tau_t * tau_t) * h);
      if (!sa_b_coeffs (lambdas + i - corr_used + 1, corr_used, lambdas[i - 1], lambdas[i], tau_t, coef))
        goto singular;
      for (gsize k = 0; k < c->n; k++) {
        double v = decay * x[k];
        for (int j = 0; j < corr_used; j++)
          v += coef[j] * list[n_list - corr_used + j][k];
        if (tau_t > 0.0 && o->s_noise > 0.0 && have_noise)
          v += noise[k];
        x[k] = (float) v;
      }
      if (o->pece && !easel_sampling_denoise (c, x, s, i, den, NULL, error))
        return FALSE;
    }
    /* predictor */
    if (s_next == 0.0) {
      memcpy (x_pred, den, c->n * sizeof (float));
      continue;
    }
    tau_t = (o->eta > 0.0 && start_sigma >= s_next && s_next >= end_sigma) ? o->eta : 0.0;
    pred_used = MAX (pred_used, 1);
    if (!sa_b_coeffs (lambdas + i - pred_used + 1, pred_used, lambdas[i], lambdas[i + 1], tau_t, coef))
      goto singular;
    h = lambdas[i + 1] - lambdas[i];
    {
      double decay = s_next / s * exp (-(tau_t * tau_t) * h);
      for (gsize k = 0; k < c->n; k++) {
        double v = decay * x[k];
        for (int j = 0; j < pred_used; j++)
          v += coef[j] * list[n_list - pred_used + j][k];
        x_pred[k] = (float) v;
      }
    }
    if (tau_t > 0.0 && o->s_noise > 0.0) {
      double amp = s_next * sqrt (-expm1 (-2.0 * tau_t * tau_t * h)) * o->s_noise;
      if (!easel_sampling_noise (c, s, s_next, noise, error))
        return FALSE;
      for (gsize k = 0; k < c->n; k++) {
        noise[k] = (float) (noise[k] * amp);
        x_pred[k] += noise[k];
      }
      have_noise = TRUE;
    }
  }
  memcpy (x, x_pred, c->n * sizeof (float));
  return TRUE;

singular:
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "sa_solver: repeated sigmas give a singular system");
  return FALSE;
}

/* --- UniPC --------------------------------------------------------------------------------------- */

/* ComfyUI's SigmaConvert noise schedule in closed form: alpha = 1/sqrt(1 + s^2), std = s alpha,
 * lambda = -log(s). */
static double vp_alpha (double s) { return 1.0 / sqrt (1.0 + s * s); }

typedef struct {
  const EaselSampleCtx *c;
  float *xv;    /* scratch: the VE x handed to the denoiser */
  guint step;
} UniPc;

/* data prediction at VP state x_vp and sigma s: D(x_vp / alpha(s), s) -> out */
static gboolean
unipc_model (UniPc *u, const float *x_vp, double s, float *out, GError **error)
{
  double inv = 1.0 / vp_alpha (s);
  for (gsize k = 0; k < u->c->n; k++)
    u->xv[k] = (float) (x_vp[k] * inv);
  return easel_sampling_denoise (u->c, u->xv, s, u->step, out, NULL, error);
}

/* multistep_uni_pc_bh_update (predict_x0): x (VP) from t_prev[order-1] (newest) to t; model_t gets
 * the model at the corrected point's predictor when use_corrector. x_tmp: scratch. */
static gboolean
unipc_update (UniPc *u, int variant, float *x, float *const *mp, const double *tp, int n_prev, double t, int order,
              gboolean use_corrector, float *model_t, float *x_tmp, GError **error)
{
  const float *m0 = mp[n_prev - 1];
  double t0 = tp[n_prev - 1], h = log (t0) - log (t), hh = -h, h_phi_1 = expm1 (hh), h_phi_k = h_phi_1 / hh - 1.0;
  double B_h = variant == 2 ? expm1 (hh) : hh, fact = 1.0, rks[3], R[9], bvec[3], rhos_p[3], rhos_c[3];
  double alpha_t = vp_alpha (t), ratio = (t * vp_alpha (t)) / (t0 * vp_alpha (t0));

  for (int i = 1; i < order; i++)
    rks[i - 1] = (-log (tp[n_prev - 1 - i]) + log (t0)) / h;
  rks[order - 1] = 1.0;
  for (int i = 1; i <= order; i++) {
    for (int j = 0; j < order; j++)
      R[(i - 1) * order + j] = pow (rks[j], i - 1);
    bvec[i - 1] = h_phi_k * fact / B_h;
    fact *= i + 1;
    h_phi_k = h_phi_k / hh - 1.0 / fact;
  }
  if (order == 2) {
    rhos_p[0] = 0.5;
  } else if (order > 2) {
    double Rp[4] = { R[0], R[1], R[order], R[order + 1] };
    rhos_p[0] = bvec[0];
    rhos_p[1] = bvec[1];
    if (!solve_small (Rp, rhos_p, order - 1))
      return FALSE;
  }
  if (use_corrector) {
    if (order == 1) {
      rhos_c[0] = 0.5;
    } else {
      memcpy (rhos_c, bvec, order * sizeof (double));
      if (!solve_small (R, rhos_c, order))
        return FALSE;
    }
  }
  for (gsize k = 0; k < u->c->n; k++) {
    double xt_ = ratio * x[k] - alpha_t * h_phi_1 * m0[k], pred = 0.0;
    for (int i = 1; i < order; i++)
      pred += rhos_p[i - 1] * (mp[n_prev - 1 - i][k] - m0[k]) / rks[i - 1];
    x_tmp[k] = (float) xt_;
    x[k] = (float) (xt_ - alpha_t * B_h * pred);
  }
  if (!use_corrector)
    return TRUE;
  if (!unipc_model (u, x, t, model_t, error))
    return FALSE;
  for (gsize k = 0; k < u->c->n; k++) {
    double corr = 0.0;
    for (int i = 1; i < order; i++)
      corr += rhos_c[i - 1] * (mp[n_prev - 1 - i][k] - m0[k]) / rks[i - 1];
    x[k] = (float) (x_tmp[k] - alpha_t * B_h * (corr + rhos_c[order - 1] * (model_t[k] - m0[k])));
  }
  return TRUE;
}

gboolean
easel_sample_uni_pc (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                     gsize n_sigmas, GError **error)
{
  guint steps = N_STEPS;
  int order = MIN (3, (int) steps - 1), n_prev = 0, variant = o->solver_type == 2 ? 2 : 1;
  float *b[7], *mp[3], *spare;
  g_autofree float *block = easel_sampling_buffers (c->n, 7, b);
  UniPc u = { c, b[0], 0 };
  float *x_tmp = b[1];
  double tp[3], t_x;
  g_autofree double *ts = g_new (double, n_sigmas);

  for (gsize i = 0; i < n_sigmas; i++)
    ts[i] = sigmas[i];
  if (ts[steps] == 0.0)
    ts[steps] = 0.001;
  for (gsize k = 0; k < c->n; k++)
    x[k] = (float) (x[k] / sqrt (1.0 + ts[0] * ts[0]));
  spare = b[2];
  t_x = ts[0];
  for (guint step_index = 0; step_index < steps; step_index++) {
    u.step = step_index;
    if (step_index == 0) {
      if (!unipc_model (&u, x, ts[0], spare, error))
        return FALSE;
      mp[n_prev] = spare;
      tp[n_prev++] = ts[0];
      spare = b[2 + n_prev];
    } else if ((int) step_index < order) {
      if (!unipc_update (&u, variant, x, mp, tp, n_prev, ts[step_index], (int) step_index, TRUE, spare, x_tmp,
                         error))
        goto fail;
      t_x = ts[step_index];
      mp[n_prev] = spare;
      tp[n_prev++] = ts[step_index];
      spare = b[2 + n_prev];
    } else {
      guint last = step_index == steps - 1 ? step_index + 1 : step_index;
      for (guint step = step_index; step <= last; step++) {
        int step_order = MIN (order, (int) (steps + 1 - step));
        gboolean use_corrector = step != steps;
        if (!unipc_update (&u, variant, x, mp, tp, n_prev, ts[step], step_order, use_corrector, spare, x_tmp,
                           error))
          goto fail;
        t_x = ts[step];
        if (use_corrector) {   /* drop the oldest, the corrector's model value becomes the newest */
          float *oldest = mp[0];
          memmove (mp, mp + 1, (n_prev - 1) * sizeof (float *));
          memmove (tp, tp + 1, (n_prev - 1) * sizeof (double));
          mp[n_prev - 1] = spare;
          tp[n_prev - 1] = ts[step];
          spare = oldest;
        }
      }
    }
    for (gsize k = 0; k < c->n; k++)
      u.xv[k] = (float) (x[k] / vp_alpha (t_x));
    easel_sampling_step (c, step_index, steps, u.xv, mp[n_prev - 1]);
  }
  for (gsize k = 0; k < c->n; k++)
    x[k] = (float) (x[k] / vp_alpha (ts[steps]));
  return TRUE;

fail:
  if (error && *error == NULL)
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "uni_pc: repeated sigmas give a singular system");
  return FALSE;
}
