/* warnings.c — the post-run checks of warnings.h.  They read the columns a
 * run wrote, not the engines' internals, so any engine's draws get the same
 * checks (and a CSV read back can get them too).  Messages name at most a
 * few variables with their figures; RunWarning.vars has them all. */
#include "warnings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/value.h"
#include "psis.h"

enum { WN_SHOWN = 5 }; /* variables named in one message */

typedef struct WList {
  RunWarning *w;
  int n, cap;
} WList;

static void wn_add(WList *l, const char *kind, int nvars, const char **vars, const char *message,
                   const char *advice) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 8;
    RunWarning *w = gc_alloc(sizeof(RunWarning) * (size_t)cap);
    if (l->n) memcpy(w, l->w, sizeof(RunWarning) * (size_t)l->n);
    l->w = w, l->cap = cap;
  }
  l->w[l->n++] = (RunWarning){kind, nvars, vars, message, advice};
}

bool warn_is_sampler_column(const char *name) {
  size_t len = strlen(name);
  return len > 2 && !strcmp(name + len - 2, "__") && strcmp(name, "lp__");
}

static int wn_column(const WarnInput *in, const char *name) {
  for (int i = 0; i < in->ncols; i++)
    if (!strcmp(in->names[i], name)) return i;
  return -1;
}

static const double *wn_draws(const WarnInput *in, int c, int col) {
  return in->data[c] + (size_t)col * (size_t)in->n;
}

/* "theta (1.53), mu (1.02) and 3 more" */
static char *wn_list(int k, const char **vars, const double *vals, const char *fmt) {
  char *s = "";
  for (int i = 0; i < k && i < WN_SHOWN; i++) {
    char num[32];
    if (isinf(vals[i])) snprintf(num, sizeof num, "inf");
    else snprintf(num, sizeof num, fmt, vals[i]);
    s = gc_printf("%s%s%s (%s)", s, i ? ", " : "", vars[i], num);
  }
  if (k > WN_SHOWN) s = gc_printf("%s and %d more", s, k - WN_SHOWN);
  return s;
}

static void wn_rhat(const WarnInput *in, WList *l) {
  if (in->m < 2) return;
  const char **vars = gc_alloc(sizeof(char *) * (size_t)(in->ncols + 1));
  double *vals = gc_alloc_atomic(sizeof(double) * (size_t)(in->ncols + 1));
  int k = 0;
  bool inf = false;
  for (int i = 0; i < in->ncols; i++) {
    double r = in->stats[i].rhat;
    if (warn_is_sampler_column(in->names[i]) || !(r > WARN_RHAT)) continue;
    inf |= isinf(r);
    vars[k] = in->labels[i], vals[k++] = r;
  }
  if (!k) return;
  wn_add(l, "rhat", k, vars,
         gc_printf("R-hat above %.2f for %d variable%s: %s%s", WARN_RHAT, k, k == 1 ? "" : "s",
                   wn_list(k, vars, vals, "%.3f"),
                   inf ? "; inf: each chain is constant at its own value" : ""),
         inf ? "the chains are stuck apart: look at where each starts (--init) and whether the "
               "engine can move between the values at all"
         : in->vi_family
             ? "each chain fitted its own approximation and the fits disagree: the optimisation "
               "stopped short of the optimum; lower --tol-rel-obj, raise --grad-samples or "
               "--iter, or run nuts"
             : "the chains disagree: run longer (--warmup, --draws) or reparameterise; do not "
               "trust the estimates yet");
}

static void wn_ess(const WarnInput *in, WList *l) {
  /* a variational chain's draws are independent: a low ESS only restates
     the chains' disagreement, which the R-hat warning reports */
  if (in->vi_family) return;
  double min = WARN_ESS_PER_CHAIN * (double)in->m;
  const char **vars = gc_alloc(sizeof(char *) * (size_t)(in->ncols + 1));
  double *vals = gc_alloc_atomic(sizeof(double) * (size_t)(in->ncols + 1));
  int k = 0;
  for (int i = 0; i < in->ncols; i++) {
    const SummaryStats *s = &in->stats[i];
    if (warn_is_sampler_column(in->names[i])) continue;
    double e = s->ess_bulk;
    if (isnan(e) || (!isnan(s->ess_tail) && s->ess_tail < e)) e = s->ess_tail;
    if (isnan(e) || e >= min) continue;
    vars[k] = in->labels[i], vals[k++] = e;
  }
  if (!k) return;
  wn_add(l, "ess", k, vars,
         gc_printf("bulk or tail ESS below %d per chain (%.0f for %d chain%s) for %d variable%s: %s",
                   WARN_ESS_PER_CHAIN, min, in->m, in->m == 1 ? "" : "s", k, k == 1 ? "" : "s",
                   wn_list(k, vars, vals, "%.0f")),
         in->weighted ? "the weighted draws carry little information: more draws, or an engine "
                        "that moves the latents (nuts, mh, smc with --rejuvenate)"
                      : "the draws are strongly autocorrelated: run more draws (--draws) or "
                        "reparameterise; means, quantiles and R-hat are unreliable");
}

double warn_ebfmi(int n, const double *e) {
  if (n < 2) return NAN;
  double mean = 0, num = 0, den = 0;
  for (int i = 0; i < n; i++) mean += e[i];
  mean /= n;
  for (int i = 0; i < n; i++) {
    if (i) num += (e[i] - e[i - 1]) * (e[i] - e[i - 1]);
    den += (e[i] - mean) * (e[i] - mean);
  }
  return den > 0 ? num / den : NAN;
}

static const char *wn_chain(int c) { return gc_printf("chain %d", c + 1); }

static void wn_ebfmi(const WarnInput *in, WList *l) {
  int col = wn_column(in, "energy__");
  if (col < 0) return;
  const char **vars = gc_alloc(sizeof(char *) * (size_t)in->m);
  double *vals = gc_alloc_atomic(sizeof(double) * (size_t)in->m);
  int k = 0;
  for (int c = 0; c < in->m; c++) {
    double b = warn_ebfmi(in->n, wn_draws(in, c, col));
    if (b < WARN_EBFMI) vars[k] = wn_chain(c), vals[k++] = b;
  }
  if (!k) return;
  wn_add(l, "ebfmi", k, vars,
         gc_printf("E-BFMI below %.1f in %d of %d chains: %s", WARN_EBFMI, k, in->m,
                   wn_list(k, vars, vals, "%.2f")),
         "the momentum resampling explores the energy poorly (heavy tails or funnel "
         "geometry): reparameterise (e.g. non-centred) or tighten the priors");
}

static long wn_count(const WarnInput *in, int col, double at_least) {
  long k = 0;
  for (int c = 0; c < in->m; c++) {
    const double *x = wn_draws(in, c, col);
    for (int i = 0; i < in->n; i++) k += x[i] >= at_least;
  }
  return k;
}

/* "; per chain 39, 16, 56, 68": the counts of draws at or above at_least
 * chain by chain (with several chains; the chain notes used to say this). */
static const char *wn_per_chain(const WarnInput *in, int col, double at_least) {
  if (in->m < 2) return "";
  char *s = "; per chain ";
  for (int c = 0; c < in->m; c++) {
    const double *x = wn_draws(in, c, col);
    long k = 0;
    for (int i = 0; i < in->n; i++) k += x[i] >= at_least;
    s = gc_printf("%s%s%ld", s, c ? ", " : "", k);
  }
  return s;
}

static void wn_divergences(const WarnInput *in, WList *l) {
  int col = wn_column(in, "divergent__");
  if (col < 0) return;
  long k = wn_count(in, col, 0.5), total = (long)in->m * in->n;
  if (!k) return;
  double ad = in->adapt_delta;
  const char *advice =
      isnan(ad) || ad < 0.95
          ? gc_printf("increase --adapt-delta (now %g) towards 0.95, or reparameterise "
                      "(e.g. non-centred); divergent draws bias the estimates", isnan(ad) ? 0.8 : ad)
      : ad < 0.99
          ? gc_printf("reparameterise (e.g. non-centred); --adapt-delta is already %g, "
                      "a value closer to 1 (0.99) helps only a little", ad)
          : gc_printf("reparameterise (e.g. non-centred) or tighten the priors: --adapt-delta "
                      "is already %g", ad);
  wn_add(l, "divergences", 0, NULL,
         gc_printf("%ld of %ld transitions after warmup diverged (%.1f%%%s)", k, total,
                   100.0 * (double)k / (double)total, wn_per_chain(in, col, 0.5)),
         advice);
}

static void wn_treedepth(const WarnInput *in, WList *l) {
  int col = wn_column(in, "treedepth__");
  if (col < 0 || in->max_depth <= 0) return;
  long k = wn_count(in, col, in->max_depth), total = (long)in->m * in->n;
  if (!k) return;
  wn_add(l, "treedepth", 0, NULL,
         gc_printf("%ld of %ld transitions after warmup hit the maximum tree depth of %d (%.1f%%%s)",
                   k, total, in->max_depth, 100.0 * (double)k / (double)total,
                   wn_per_chain(in, col, in->max_depth)),
         gc_printf("raise --max-depth (now %d) or reparameterise: the sampler is working hard "
                   "(strong correlations or very different scales)", in->max_depth));
}

static void wn_acceptance(const WarnInput *in, WList *l) {
  int col = wn_column(in, "accept_stat__");
  if (!in->random_walk || col < 0 || in->n < 1) return;
  const char **vars = gc_alloc(sizeof(char *) * (size_t)in->m);
  double *vals = gc_alloc_atomic(sizeof(double) * (size_t)in->m);
  int k = 0;
  bool low = false;
  for (int c = 0; c < in->m; c++) {
    const double *x = wn_draws(in, c, col);
    double a = 0;
    for (int i = 0; i < in->n; i++) a += x[i];
    a /= in->n;
    if (a < WARN_ACCEPT_LOW || a > WARN_ACCEPT_HIGH) {
      low |= a < WARN_ACCEPT_LOW;
      vars[k] = wn_chain(c), vals[k++] = a;
    }
  }
  if (!k) return;
  wn_add(l, "acceptance", k, vars,
         gc_printf("MH acceptance rate outside [%.2f, %.2f] in %d of %d chains: %s",
                   WARN_ACCEPT_LOW, WARN_ACCEPT_HIGH, k, in->m, wn_list(k, vars, vals, "%.3f")),
         low ? "almost every proposal is rejected: the chain barely moves; run more warmup "
               "(the proposal scale adapts during it) or use nuts for continuous latents"
             : "almost every proposal is accepted: the steps are tiny or the latents barely "
               "matter; run more warmup or check that the data inform them");
}

/* Weights that collapsed onto a few draws, or populations that are copies
 * of a few particles (SMC after resampling without enough moves). */
static int wn_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void wn_collapse(const WarnInput *in, WList *l) {
  if (!in->weighted) return;
  double kish = diag_kish_ess(in->m, in->n, in->lw);
  const char **vars = gc_alloc(sizeof(char *) * (size_t)(in->ncols + 1));
  int k = 0, worst = in->n;
  /* distinct values per chain of each column that is not whole numbers */
  for (int i = 0; i < in->ncols; i++) {
    if (warn_is_sampler_column(in->names[i]) || !strcmp(in->names[i], "lp__")) continue;
    int fewest = in->n;
    for (int c = 0; c < in->m; c++) {
      const double *x = wn_draws(in, c, i);
      bool whole = true;
      for (int j = 0; j < in->n && whole; j++) whole = x[j] == nearbyint(x[j]);
      if (whole) break;
      double *s = gc_alloc_atomic(sizeof(double) * (size_t)in->n);
      int d = 0;
      for (int j = 0; j < in->n; j++) {
        if (!isfinite(in->lw[c][j])) continue; /* a dead particle is no value */
        s[d++] = x[j];
      }
      qsort(s, (size_t)d, sizeof(double), wn_cmp);
      int distinct = 0;
      for (int a = 0; a < d; a++) distinct += a == 0 || s[a] != s[a - 1];
      if (distinct < fewest) fewest = distinct;
    }
    if (fewest * 10 < in->n) {
      vars[k++] = in->labels[i];
      if (fewest < worst) worst = fewest;
    }
  }
  if (k)
    wn_add(l, "collapse", k, vars,
           gc_printf("the population collapsed: %s has as few as %d distinct value%s among the "
                     "%d draws of a chain%s",
                     vars[0], worst, worst == 1 ? "" : "s", in->n,
                     k > 1 ? gc_printf(" (and %d more variable%s)", k - 1, k > 2 ? "s" : "") : ""),
           "the estimates rest on a few particles: rejuvenate them (smc --rejuvenate K), use "
           "more particles (--draws), or an MCMC engine (nuts, mh)");
  if (kish < WARN_KISH_COLLAPSED)
    wn_add(l, "collapse", 0, NULL,
           gc_printf("the importance weights collapsed: their Kish ESS is %.1f of %ld draws; "
                     "the log evidence and every weighted estimate rest on that many draws",
                     kish, (long)in->m * in->n),
           "the proposal (the prior) is far from the posterior: use an MCMC engine (nuts, mh) "
           "or smc with --rejuvenate");
}

/* Independent runs that disagree about log Z by more than a unit: the
 * estimate rests on whichever found the most mass. */
static void wn_evidence(const WarnInput *in, WList *l) {
  if (!in->chain_logz || in->m < 2) return;
  double mean = 0, var = 0;
  for (int c = 0; c < in->m; c++) {
    if (!isfinite(in->chain_logz[c])) return;
    mean += in->chain_logz[c];
  }
  mean /= in->m;
  for (int c = 0; c < in->m; c++) var += (in->chain_logz[c] - mean) * (in->chain_logz[c] - mean);
  double sd = sqrt(var / (in->m - 1));
  if (!(sd > WARN_LOGZ_SD)) return;
  char *list = "";
  for (int c = 0; c < in->m && c < 8; c++)
    list = gc_printf("%s%s%.2f", list, c ? ", " : "", in->chain_logz[c]);
  if (in->m > 8) list = gc_printf("%s, ...", list);
  wn_add(l, "evidence", 0, NULL,
         gc_printf("the chains' log evidence estimates disagree (sd %.2f): %s", sd, list),
         "the log evidence is not reliable: more particles or draws, more rejuvenation moves "
         "(smc --rejuvenate K) or more chains; its standard error counts the disagreement");
}

/* A heavy right tail of the importance weights (psis.h): above 0.7 no
 * practical number of draws makes the weighted estimates reliable. */
static void wn_pareto_k(const WarnInput *in, WList *l) {
  if (!in->weighted || !(in->pareto_k > PSIS_K_WARN)) return;
  wn_add(l, "pareto_k", 0, NULL,
         gc_printf("the importance weights' Pareto k is %.2f (above %.1f): their tail is so heavy "
                   "that the weighted estimates and the log evidence are unreliable",
                   in->pareto_k, PSIS_K_WARN),
         "more draws will not fix it: the proposal is far from the posterior; use an MCMC engine "
         "(nuts, mh) or smc, whose moves bring the particles to the posterior");
}

/* Points the program rejected while sampling (a failed parameter check, the
   log density -inf there): valid, as in Stan, but a scale that can go
   negative is nearly always a constraint left out. */
static void wn_rejections(const WarnInput *in, WList *l) {
  if (in->rejecting <= 0 || !in->reject_first) return;
  const char *latent = in->reject_latent;
  /* A latent without the bound its use needs is a mistake however rare its
     rejections; otherwise a few in warmup (a value underflowing to a bound
     while the step size is still large) are ordinary, as in Stan. */
  if (!latent && (double)in->rejecting < WARN_REJECT_FRACTION * (double)in->transitions) return;
  const char **vars = NULL;
  if (latent) {
    vars = gc_alloc(sizeof(char *));
    vars[0] = latent;
  }
  bool sign = strstr(in->reject_first, "must be positive") ||
              strstr(in->reject_first, "must be nonnegative");
  const char *advice;
  if (sign && latent)
    advice = gc_printf("declare '%s' with a lower bound of 0 (`real<lower=0> %s ~ ...;`, "
                       "`vector<lower=0>[K] %s ~ ...;`), truncating its prior to the positive "
                       "half, so the sampler never proposes a negative value",
                       latent, latent, latent);
  else if (sign)
    advice = "a parameter that must be positive went negative: declare the latents it is "
             "computed from with <lower=0> (e.g. `real<lower=0> sigma ~ normal(0, 1);`), or "
             "keep it positive by construction (exp(), softplus)";
  else
    advice = "the sampler treats these points as impossible; if they are not, widen the "
             "declared bounds of the latents involved so the sampler never proposes them";
  wn_add(l, "rejections", latent ? 1 : 0, vars,
         gc_printf("%ld of %ld transitions (%.1f%%, warmup included) met points the program "
                   "rejects; the first: %s%s",
                   in->rejecting, in->transitions,
                   in->transitions > 0 ? 100.0 * (double)in->rejecting / (double)in->transitions
                                       : 0.0,
                   in->reject_first, latent ? gc_printf(" (latent '%s')", latent) : ""),
         advice);
}

/* A variational approximation whose importance weights against the posterior
 * have a heavy tail (Yao et al. 2018, "Yes, but did it work?"): q misses
 * mass the posterior has, and its draws say little about it. */
static void wn_vi(const WarnInput *in, WList *l) {
  if (!in->vi_family) return;
  if (in->vi_khat > PSIS_K_WARN)
    wn_add(l, "vi_khat", 0, NULL,
           gc_printf("the %s approximation's PSIS k-hat is %.2f (above %.1f): q is far from the "
                     "posterior (too light tails, a funnel or a missed mode), so the means, sds "
                     "and quantiles of its draws cannot be trusted",
                     in->vi_family, in->vi_khat, PSIS_K_WARN),
           strcmp(in->vi_family, "meanfield") == 0
               ? "do not use these draws: run --engine nuts (a richer family, --vi fullrank or "
                 "--vi flow, may help; --psis-resample corrects only mild mismatches)"
           : strcmp(in->vi_family, "fullrank") == 0
               ? "do not use these draws: run --engine nuts (--vi flow may help; "
                 "--psis-resample corrects only mild mismatches)"
           : strcmp(in->vi_family, "flow") == 0
               ? "do not use these draws: run --engine nuts (more --grad-samples, --iter or "
                 "--flow-layers may help; --psis-resample corrects only mild mismatches)"
           : strcmp(in->vi_family, "amortized guide") == 0
               ? "the trained encoders do not fit these data (they may be unlike the data they "
                 "were trained on): do not use these draws; run --engine nuts (a longer `ppl "
                 "train`, or richer encoders, may help; --psis-resample corrects only mild "
                 "mismatches)"
           : strcmp(in->vi_family, "npe") == 0
               ? "the amortized network does not fit these data (they may be unlike the "
                 "simulations it was trained on): do not use these draws; run --engine nuts "
                 "(more --simulations or --epochs in `ppl train --amortize` may help; "
                 "--psis-resample corrects only mild mismatches)"
               : "do not use these draws: run --engine nuts (a guide family closer to the "
                 "posterior may help; --psis-resample corrects only mild mismatches)");
  if (in->vi_unconverged > 0)
    wn_add(l, "vi_converged", 0, NULL,
           gc_printf("%d of %d chains' optimisation stopped at --iter before the relative ELBO "
                     "change fell below --tol-rel-obj",
                     in->vi_unconverged, in->m),
           "raise --iter (or --tol-rel-obj); the ELBO trace is in each CSV's comments and the "
           "summary JSON's vi.chains[].trace");
}

RunWarning *warn_collect(const WarnInput *in, int *n) {
  WList l = {0};
  if (in->m >= 1 && in->n >= 1) {
    wn_rhat(in, &l);
    wn_ess(in, &l);
    wn_ebfmi(in, &l);
    wn_divergences(in, &l);
    wn_treedepth(in, &l);
    wn_acceptance(in, &l);
    wn_collapse(in, &l);
    wn_evidence(in, &l);
    wn_pareto_k(in, &l);
    wn_rejections(in, &l);
    wn_vi(in, &l);
  }
  *n = l.n;
  return l.w;
}
