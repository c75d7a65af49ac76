/* steer.c — sequential Monte Carlo steering of language models (LLaMPPL's
 * SMC steering, Lew et al. 2023), the engine for programs with `lm` /
 * `lm_next` choices.
 *
 * A particle is a suspended execution of the program (InterpState, forked
 * copy-on-write on resampling) plus one LmCursor per backend it has used.
 * The handler suspends a run *at* each lm choice (HR_SUSPEND from sample) and
 * answers every other choice, observation and factor inline (the trace
 * handler: non-lm choices from their prior, events into the weight).  One
 * step of the engine:
 *   1. every particle that is not waiting for a token runs to its next lm
 *      choice, or to its end; the events it meets on the way (condition,
 *      factor, observations — rewards among them) weigh it, and a particle
 *      whose weight is 0 stops there (its cursors are released);
 *   2. when the effective sample size of the weights is below
 *      --ess-threshold x N the population is resampled (the resampling
 *      schemes of resample.h; offspring fork the execution and the cursors,
 *      so children share their parent's KV cache), unless --resample never;
 *   3. the waiting particles' cursors that need it are evaluated in one
 *      batch per backend (lm_cursor_eval); cursors holding the same text and
 *      pending tokens are evaluated once and the others become forks of it,
 *      so the prompt every particle starts from is decoded once;
 *   4. each waiting particle draws one token (lm_sample) from the
 *      renormalised masked distribution when its call has `avoid`, and adds
 *      the mask's log mass log Z to its log weight: the target is the
 *      unmasked LM times the constraint.  An `lm_next` choice gets the token's
 *      text ("" for eos) as its value; an `lm` choice is generated token by
 *      token in lockstep and gets its value when the string ends (eos, the
 *      stop string, or max_tokens tokens), exactly as the family's own
 *      sampler generates it (stdlib), so every engine targets one
 *      distribution.
 * A run ends when no particle waits.  The log evidence is the product of
 * the mean weights at each resampling and at the end (unbiased); with
 * --resample never it is importance sampling with the LM as proposal.
 *
 * Draws.  --select all (the default) gives one CSV row per particle of a run,
 * its log weight log Z_run + log(N W_i) as smc gives it; a chain runs
 * ceil(draws / N) runs.  --select best gives one row per run: the particle of
 * the largest weight (best-of-N under the program's rewards); --select vote
 * one row per run: a particle of the value of the program's last string
 * output (its answer; else its last output) whose particles have the
 * largest total weight (weighted majority vote; the
 * plain vote when the weights are equal).  Those rows have log weight 0.
 * --budget T caps the tokens drawn by a run (all particles together):
 * particles still generating when it is spent are dropped (weight 0) and the
 * chain notes say how many.
 *
 * One thread: a backend is used from one thread at a time.  Token draws and
 * inline choices come from each particle's own stream, seeded from the
 * chain's, so a seed gives the same bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/lm.h"
#include "../stdlib/lm_family.h"
#include "engine.h"
#include "resample.h"
#include "steer.h"
#include "trace.h"

#define STEER_PARTICLES 100 /* --particles 0 (the default) */

enum { SEL_ALL = 0, SEL_BEST, SEL_VOTE };
static const char *const steer_select_names[] = {"all", "best", "vote", NULL};

/* One backend's cursor of a particle. */
typedef struct SteerCur {
  LmBackend *b;
  LmCursor c;
} SteerCur;

/* One suspended lm choice, as the engine answers it: the family's arguments
 * (lm_call_args, so steer reads a call exactly as inline sampling does). */
typedef struct SteerCall {
  LmArgs a;
  LmBackend *b;         /* the backend of its `model` in the run's LmSet */
  const uint8_t *allow; /* the mask of avoid (lm_avoid_mask); NULL: none */
} SteerCall;

typedef struct SteerParticle {
  InterpState *st;
  double logprior, loglik;
  bool done;    /* no more tokens: finished, dead or dropped */
  bool killed;  /* its program failed with a runtime error */
  bool waiting; /* suspended at an lm choice, drawing its tokens */
  SteerCall call;
  SteerCur *cur; /* waiting: the cursor of call's backend */
  char *gen;     /* an lm choice: the text generated so far (malloc) */
  size_t glen, gcap;
  int ntok;      /* its tokens so far */
  int ncur;
  SteerCur *curs; /* malloc'd, one per backend used */
  int eve; /* the initial particle it descends from (Lee-Whiteley) */
  Rng rng;
} SteerParticle;

typedef struct SteerMask { /* allowed tokens of one (backend, avoid) */
  const LmBackend *b;
  char *avoid;
  uint8_t *allow;
} SteerMask;

typedef struct SteerState {
  const Interp *in;
  const IrProgram *prog;
  int chain;
  Rng rng;
  EngineOpts o;
  int N, scheme, select, vote_out;
  long budget;
  double ess_threshold;
  uint64_t model_seed;
  SteerParticle *p, *q;
  double *lw, *w;
  int *anc, *perm;
  SteerMask *masks;
  int nmask;
  LmCursor **batch; /* scratch */
  int *order;
  uint64_t *key; /* steer_eval's scratch: the waiting contexts' hashes, their groups */
  int *rep;
  /* the current run */
  double run_logz;
  int next;  /* next draw of the run to emit; `ndraws` = exhausted */
  int ndraws;
  int heavy; /* the run's heaviest particle */
  /* per chain */
  RunEvidence ev;
  long resamplings, steps, evals, decoded, drawn, forks, shared, killed, dropped, dead;
  double ess_min;
  char first_err[sizeof ((Diag *)0)->msg];
} SteerState;

/* ---- the handler: suspend at lm choices, everything else inline ---- */

typedef struct SteerHandler {
  TraceHandler th; /* first: a SteerHandler* is a Handler* */
  HandlerResult (*inline_sample)(Handler *, const char *, const DistCall *, Value *, SrcPos,
                                 Diag *);
  HandlerResult (*inline_observe)(Handler *, const DistCall *, Value, SrcPos, Diag *);
  HandlerResult (*inline_factor)(Handler *, double, SrcPos, Diag *);
} SteerHandler;

static HandlerResult steer_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                  SrcPos pos, Diag *d) {
  if (lm_family_is(dc->fam)) return HR_SUSPEND;
  return ((SteerHandler *)h)->inline_sample(h, addr, dc, out, pos, d);
}

/* A particle whose weight has become 0 stops at that event: what follows a
   failed condition (a judge that cannot read a malformed answer) never runs. */
static HandlerResult steer_stop_dead(SteerHandler *sh, HandlerResult r) {
  return r == HR_CONTINUE && !(sh->th.tr->loglik > -INFINITY) ? HR_SUSPEND : r;
}

static HandlerResult steer_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos,
                                   Diag *d) {
  SteerHandler *sh = (SteerHandler *)h;
  return steer_stop_dead(sh, sh->inline_observe(h, dc, x, pos, d));
}

static HandlerResult steer_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  SteerHandler *sh = (SteerHandler *)h;
  return steer_stop_dead(sh, sh->inline_factor(h, lw, pos, d));
}

/* ---- cursors ---- */

static void steer_release(SteerParticle *p) {
  for (int k = 0; k < p->ncur; k++) lm_cursor_free(&p->curs[k].c);
  free(p->curs);
  free(p->gen);
  p->curs = NULL;
  p->gen = NULL;
  p->ncur = 0;
  p->cur = NULL;
  p->glen = p->gcap = 0;
}

static SteerCur *steer_cursor(SteerParticle *p, LmBackend *b, char *err, size_t errsz) {
  for (int k = 0; k < p->ncur; k++)
    if (p->curs[k].b == b) return &p->curs[k];
  SteerCur *c = realloc(p->curs, sizeof(SteerCur) * (size_t)(p->ncur + 1));
  if (!c) {
    snprintf(err, errsz, "steer: out of memory");
    return NULL;
  }
  p->curs = c;
  c = &p->curs[p->ncur];
  c->b = b;
  if (!lm_cursor_init(&c->c, b, err, errsz)) return NULL;
  p->ncur++;
  return c;
}

/* dst (fresh) becomes a copy of src: forked cursors, the generation so far. */
static bool steer_copy(SteerParticle *dst, const SteerParticle *src, char *err, size_t errsz) {
  *dst = *src;
  dst->curs = NULL;
  dst->gen = NULL;
  dst->ncur = 0;
  dst->cur = NULL;
  dst->glen = dst->gcap = 0;
  if (src->ncur) {
    dst->curs = malloc(sizeof(SteerCur) * (size_t)src->ncur);
    if (!dst->curs) return snprintf(err, errsz, "steer: out of memory"), false;
    for (int k = 0; k < src->ncur; k++) {
      dst->curs[k].b = src->curs[k].b;
      if (!lm_cursor_fork(&dst->curs[k].c, &src->curs[k].c, err, errsz)) {
        steer_release(dst);
        return false;
      }
      dst->ncur++;
      if (src->cur == &src->curs[k]) dst->cur = &dst->curs[k];
    }
  }
  if (src->gen) {
    dst->gen = malloc(src->gcap);
    if (!dst->gen) return snprintf(err, errsz, "steer: out of memory"), false;
    memcpy(dst->gen, src->gen, src->glen + 1);
    dst->glen = src->glen;
    dst->gcap = src->gcap;
  }
  return true;
}

static bool steer_append(SteerParticle *p, const char *t, size_t n) {
  if (p->glen + n + 1 > p->gcap) {
    size_t cap = p->gcap ? p->gcap : 64;
    while (cap < p->glen + n + 1) cap *= 2;
    char *g = realloc(p->gen, cap);
    if (!g) return false;
    p->gen = g;
    p->gcap = cap;
  }
  memcpy(p->gen + p->glen, t, n);
  p->glen += n;
  p->gen[p->glen] = 0;
  return true;
}

/* The allowed tokens of (b, avoid), made once per chain; *allow NULL: all. */
static bool steer_mask(SteerState *s, LmBackend *b, const char *avoid, const uint8_t **out,
                       char *err, size_t errsz) {
  *out = NULL;
  if (!avoid || !*avoid) return true;
  for (int k = 0; k < s->nmask; k++)
    if (s->masks[k].b == b && !strcmp(s->masks[k].avoid, avoid))
      return *out = s->masks[k].allow, true;
  uint8_t *allow = gc_alloc_atomic((size_t)b->n_vocab);
  if (!lm_avoid_mask(b, avoid, allow, err, errsz)) return false;
  SteerMask *m = gc_alloc(sizeof(SteerMask) * (size_t)(s->nmask + 1));
  if (s->nmask) memcpy(m, s->masks, sizeof(SteerMask) * (size_t)s->nmask);
  m[s->nmask++] = (SteerMask){b, gc_strdup(avoid), allow};
  s->masks = m;
  *out = allow;
  return true;
}

/* ---- one run ---- */

static void steer_kill(SteerState *s, SteerParticle *p, int i) {
  p->done = true;
  p->waiting = false;
  s->lw[i] = -INFINITY;
  steer_release(p);
}

/* Run particle i to its next lm choice or its end. */
static bool steer_advance(SteerState *s, int i, Diag *d) {
  SteerParticle *p = &s->p[i];
  SteerHandler sh;
  trace_handler_init(&sh.th, &p->rng, NULL, NULL, NULL, NULL);
  sh.inline_sample = sh.th.h.sample;
  sh.inline_observe = sh.th.h.observe;
  sh.inline_factor = sh.th.h.factor;
  sh.th.h.sample = steer_sample;
  sh.th.h.observe = steer_observe;
  sh.th.h.factor = steer_factor;
  Diag rd;
  diag_init(&rd);
  RunStatus rs = interp_run(p->st, &sh.th.h, &rd);
  if (rs == RUN_ERROR) {
    if (rd.code == DIAG_INTERNAL) return *d = rd, false;
    if (!s->first_err[0]) snprintf(s->first_err, sizeof s->first_err, "%s", rd.msg);
    s->killed++;
    p->killed = true;
    steer_kill(s, p, i);
    return true;
  }
  p->logprior += sh.th.tr->logprior;
  p->loglik += sh.th.tr->loglik;
  s->lw[i] += sh.th.tr->loglik;
  if (!(s->lw[i] > -INFINITY)) { /* a condition failed: no more tokens for it */
    s->dead++;
    steer_kill(s, p, i);
    return true;
  }
  if (rs == RUN_DONE) {
    p->done = true;
    steer_release(p);
    return true;
  }
  const InterpChoice *ch = interp_pending(p->st);
  if (!ch) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "steer: a run suspended outside an lm choice");
    return false;
  }
  char err[256] = "";
  lm_call_args(ch->dc.fam, ch->dc.p, &p->call.a);
  if (!(p->call.b = lm_args_backend(lm_family_set(ch->dc.fam), &p->call.a, err, sizeof err)) ||
      !(p->cur = steer_cursor(p, p->call.b, err, sizeof err)) ||
      !steer_mask(s, p->call.b, p->call.a.avoid, &p->call.allow, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, ch->pos, "%s", err);
    return false;
  }
  p->waiting = true;
  p->ntok = 0;
  p->glen = 0;
  if (p->gen) p->gen[0] = 0;
  if (!lm_cursor_seek(&p->cur->c, p->call.a.prompt, p->call.a.prompt_len, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, ch->pos, "%s", err);
    return false;
  }
  return true;
}

/* Give particle i's waiting choice its value and run it on. */
static bool steer_provide(SteerState *s, int i, Value v, Diag *d) {
  SteerParticle *p = &s->p[i];
  p->waiting = false;
  if (!interp_provide(p->st, v, d)) return false;
  return steer_advance(s, i, d);
}

/* The text's hash is the cursor's own (kept as the text grows: hashing the
   whole context every step cost a sixth of steer's own time); the pending
   tokens are few. */
static uint64_t steer_hash(const LmCursor *c) {
  uint64_t h = c->hash;
  for (int k = 0; k < c->npend; k++) h = (h ^ (uint32_t)c->pend[k]) * 1099511628211ull;
  return h;
}

static bool steer_same(const LmCursor *a, const LmCursor *b) {
  return a->len == b->len && a->npend == b->npend && !memcmp(a->text, b->text, a->len) &&
         !memcmp(a->pend, b->pend, sizeof(int32_t) * (size_t)a->npend);
}

/* Evaluate every waiting cursor that needs it: one batch per backend, each
 * distinct context once. */
static bool steer_eval(SteerState *s, Diag *d) {
  char err[256] = "";
  int N = s->N;
  for (;;) {
    LmBackend *b = NULL;
    int n = 0;
    for (int i = 0; i < N; i++) {
      SteerParticle *p = &s->p[i];
      if (!p->waiting || p->cur->c.fresh || (b && p->cur->b != b)) continue;
      if (!b) b = p->cur->b;
      s->order[n++] = i;
    }
    if (n == 0) return true;
    /* group equal contexts: the first of each group is evaluated */
    uint64_t *key = s->key;
    int *rep = s->rep;
    int nb = 0;
    for (int k = 0; k < n; k++) {
      const LmCursor *c = &s->p[s->order[k]].cur->c;
      key[k] = steer_hash(c);
      rep[k] = -1;
      for (int j = 0; j < k && rep[k] < 0; j++) /* n is small; hashes make it cheap */
        if (rep[j] < 0 && key[j] == key[k] && steer_same(&s->p[s->order[j]].cur->c, c))
          rep[k] = j;
      if (rep[k] < 0) {
        s->batch[nb++] = &s->p[s->order[k]].cur->c;
        for (int t = 0; t < c->npend; t++) s->decoded++;
      }
    }
    if (!lm_cursor_eval(s->batch, nb, err, sizeof err)) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "steer: %s", err);
      return false;
    }
    s->evals++;
    for (int k = 0; k < n; k++) {
      if (rep[k] < 0) continue;
      LmCursor *c = &s->p[s->order[k]].cur->c;
      lm_cursor_free(c);
      if (!lm_cursor_fork(c, &s->p[s->order[rep[k]]].cur->c, err, sizeof err)) {
        diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "steer: %s", err);
        return false;
      }
      s->shared++;
    }
  }
}

/* Particle i draws one token of its waiting choice. */
static bool steer_token(SteerState *s, int i, Diag *d) {
  SteerParticle *p = &s->p[i];
  LmCursor *c = &p->cur->c;
  LmBackend *b = p->cur->b;
  char err[256] = "";
  double logz = 0;
  int32_t tok = lm_sample(c->logp, b->n_vocab, p->call.allow, &p->rng, &logz);
  s->drawn++;
  if (tok < 0) { /* no allowed token: the constraint has mass 0 here */
    s->dead++;
    steer_kill(s, p, i);
    return true;
  }
  s->lw[i] += logz;
  p->logprior += c->logp[tok];
  bool eos = tok == b->eos;
  char buf[64];
  int nt = eos ? 0 : b->token_text(b->self, tok, buf, (int)sizeof buf);
  char *text = buf;
  if (nt > (int)sizeof buf) {
    text = gc_alloc_atomic((size_t)nt);
    nt = b->token_text(b->self, tok, text, nt);
  }
  if (nt < 0) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "steer: %s: token %d has no text", b->name, tok);
    return false;
  }
  if (!eos && !lm_cursor_push(c, tok, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "steer: %s", err);
    return false;
  }
  if (p->call.a.next) return steer_provide(s, i, val_strn(text, (size_t)nt), d);
  /* an lm string: it ends at eos, at the stop string, or after max_tokens */
  if (eos) return steer_provide(s, i, val_strn(p->gen ? p->gen : "", p->glen), d);
  if (!steer_append(p, text, (size_t)nt)) {
    diag_error(d, DIAG_NOMEM, (SrcPos){0}, "steer: out of memory");
    return false;
  }
  p->ntok++;
  const char *stop = p->call.a.stop_len ? strstr(p->gen, p->call.a.stop) : NULL;
  if (stop) return steer_provide(s, i, val_strn(p->gen, (size_t)(stop - p->gen)), d);
  if (p->ntok >= p->call.a.max_tokens) return steer_provide(s, i, val_strn(p->gen, p->glen), d);
  return true;
}

/* Replace the population by offspring of anc[]: an ancestor's first child
 * takes its particle, the others fork it; ancestors without children are
 * released. */
static bool steer_resample(SteerState *s, Diag *d) {
  int N = s->N;
  resample(s->scheme, N, s->w, &s->rng, s->anc);
  uint64_t seed = rng_u64(&s->rng);
  char err[256] = "";
  uint8_t *kept = gc_alloc_atomic((size_t)N);
  memset(kept, 0, (size_t)N);
  for (int j = 0; j < N; j++) kept[s->anc[j]] = 1;
  for (int j = 0; j < N; j++) {
    const SteerParticle *a = &s->p[s->anc[j]];
    if (j > 0 && s->anc[j] == s->anc[j - 1]) {
      if (!steer_copy(&s->q[j], a, err, sizeof err)) {
        diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "steer: %s", err);
        return false;
      }
      if (!a->done) s->q[j].st = interp_fork(a->st, seed, (uint64_t)j);
      s->forks++;
    } else {
      s->q[j] = *a;
    }
    rng_seed(&s->q[j].rng, seed ^ 0x9E3779B97F4A7C15ull, (uint64_t)j);
  }
  for (int i = 0; i < N; i++)
    if (!kept[i]) steer_release(&s->p[i]);
  /* cursors live in each particle's own array, so p->cur stays valid */
  SteerParticle *t = s->p;
  s->p = s->q;
  s->q = t;
  for (int k = 0; k < N; k++) s->lw[k] = 0;
  s->resamplings++;
  return true;
}

/* The draw key of particle i for --select vote. */
static const char *steer_vote_key(const SteerState *s, int i) {
  Value v = interp_output(s->p[i].st, s->vote_out);
  return val_to_string(v);
}

/* The run's draws in s->perm[0..ndraws). */
static void steer_pick(SteerState *s) {
  int N = s->N;
  s->heavy = 0;
  for (int j = 1; j < N; j++)
    if (s->w[j] > s->w[s->heavy]) s->heavy = j;
  if (s->select == SEL_BEST) {
    s->perm[0] = s->heavy;
    s->ndraws = 1;
  } else if (s->select == SEL_VOTE) {
    const char **key = gc_alloc(sizeof(char *) * (size_t)N);
    for (int i = 0; i < N; i++) key[i] = s->w[i] > 0 ? steer_vote_key(s, i) : NULL;
    double best = -1;
    int win = s->heavy;
    for (int i = 0; i < N; i++) {
      if (!key[i]) continue;
      bool seen = false;
      for (int j = 0; j < i && !seen; j++) seen = key[j] && !strcmp(key[j], key[i]);
      if (seen) continue;
      double m = 0;
      int top = i;
      for (int j = i; j < N; j++)
        if (key[j] && !strcmp(key[j], key[i])) {
          m += s->w[j];
          if (s->w[j] > s->w[top]) top = j;
        }
      if (m > best + 1e-12) best = m, win = top;
    }
    s->perm[0] = win;
    s->ndraws = 1;
  } else {
    for (int i = 0; i < N; i++) s->perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
      int j = (int)rng_int(&s->rng, 0, i), t = s->perm[i];
      s->perm[i] = s->perm[j];
      s->perm[j] = t;
    }
    s->ndraws = N;
  }
  s->next = 0;
}

static bool steer_run(SteerState *s, Diag *d) {
  int N = s->N;
  uint64_t seed = rng_u64(&s->rng);
  for (int i = 0; i < N; i++) {
    memset(&s->p[i], 0, sizeof(SteerParticle));
    s->p[i].st = interp_start(s->in, s->model_seed, (uint64_t)s->chain, true);
    s->p[i].eve = i;
    rng_seed(&s->p[i].rng, seed, (uint64_t)i);
    s->lw[i] = 0;
  }
  for (int i = 0; i < N; i++)
    if (!steer_advance(s, i, d)) return false;
  double logz = 0;
  long tokens = 0, step = 0, nres = 0;
  for (;;) {
    int waiting = 0;
    for (int i = 0; i < N; i++) waiting += s->p[i].waiting;
    double lz = resample_normalise(N, s->lw, s->w);
    if (!(lz > -INFINITY)) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "steer: every particle has weight zero after %ld token steps%s%s", step,
                 s->first_err[0] ? "; first error: " : "", s->first_err);
      return false;
    }
    if (waiting == 0) {
      logz += lz;
      break;
    }
    if (engine_interrupted(&s->o) || (s->budget > 0 && tokens + waiting > s->budget)) {
      /* the budget is spent (or the host stops): the unfinished are dropped */
      for (int i = 0; i < N; i++)
        if (s->p[i].waiting) {
          s->dropped++;
          steer_kill(s, &s->p[i], i);
        }
      continue;
    }
    double ess = resample_ess(N, s->w);
    if (ess < s->ess_min || s->ess_min < 0) s->ess_min = ess;
    if (s->scheme != RESAMPLE_NEVER && ess < s->ess_threshold * N) {
      logz += lz;
      if (!steer_resample(s, d)) return false;
      nres++;
    }
    if (!steer_eval(s, d)) return false;
    for (int i = 0; i < N; i++)
      if (s->p[i].waiting) {
        tokens++;
        if (!steer_token(s, i, d)) return false;
      }
    step++;
    engine_progress(&s->o, s->chain, step, 0, "token");
  }
  if (step > s->steps) s->steps = step;
  s->run_logz = logz;
  int *eve = gc_alloc_atomic(sizeof(int) * (size_t)N);
  for (int j = 0; j < N; j++) eve[j] = s->p[j].eve;
  evidence_add(&s->ev, logz, N, s->w, eve, (int)nres);
  steer_pick(s);
  return true;
}

/* ---- the engine ---- */

static void *steer_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  SteerState *s = gc_alloc(sizeof(SteerState));
  s->in = in;
  s->prog = interp_program(in);
  s->chain = chain;
  s->o = *o;
  s->N = (int)engine_opt_int(o, "particles");
  if (s->N == 0) s->N = STEER_PARTICLES;
  s->scheme = engine_opt_enum(o, "resample");
  s->ess_threshold = engine_opt_real(o, "ess-threshold");
  s->select = engine_opt_enum(o, "select");
  s->budget = engine_opt_int(o, "budget");
  s->vote_out = -1;
  if (s->select == SEL_VOTE) {
    /* the answer: the last string the program outputs, else its last output */
    for (int j = 0; j < s->prog->noutputs; j++)
      if (s->prog->outputs[j].type.base == TY_STRING && s->prog->outputs[j].type.ndims == 0)
        s->vote_out = j;
    if (s->vote_out < 0) s->vote_out = s->prog->noutputs - 1;
    if (s->vote_out < 0) {
      diag_error(d, DIAG_USAGE, (SrcPos){0}, "--select vote: the program has no output to vote on");
      return NULL;
    }
  }
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  s->model_seed = o->seed ^ 0x737465u;
  size_t N = (size_t)s->N;
  s->p = gc_alloc(sizeof(SteerParticle) * N);
  s->q = gc_alloc(sizeof(SteerParticle) * N);
  s->lw = gc_alloc_atomic(sizeof(double) * N);
  s->w = gc_alloc_atomic(sizeof(double) * N);
  s->anc = gc_alloc_atomic(sizeof(int) * N);
  s->perm = gc_alloc_atomic(sizeof(int) * N);
  s->order = gc_alloc_atomic(sizeof(int) * N);
  s->key = gc_alloc_atomic(sizeof(uint64_t) * N);
  s->rep = gc_alloc_atomic(sizeof(int) * N);
  s->batch = gc_alloc(sizeof(LmCursor *) * N);
  s->next = s->ndraws = 0;
  evidence_init(&s->ev);
  s->ess_min = -1;
  return s;
}

static void steer_release_all(SteerState *s) {
  for (int i = 0; i < s->N; i++) steer_release(&s->p[i]);
}

static bool steer_step(void *state, bool warmup, Draw *out, Diag *d) {
  SteerState *s = state;
  (void)warmup;
  if (s->next >= s->ndraws) {
    steer_release_all(s);
    if (!steer_run(s, d)) {
      steer_release_all(s);
      return false;
    }
  }
  int i = s->perm[s->next++];
  const SteerParticle *p = &s->p[i];
  bool zero = !(s->w[i] > 0) || p->killed; /* stopped half way: no outputs */
  if (zero) p = &s->p[s->heavy]; /* no outputs of its own: the heaviest's, weight 0 */
  engine_draw_outputs(out, p->st);
  out->lp = p->logprior + p->loglik;
  out->log_weight = s->select != SEL_ALL ? 0
                    : zero               ? -INFINITY
                                         : s->run_logz + log(s->N * s->w[i]);
  out->stats[0] = out->log_weight;
  return true;
}

static bool steer_log_evidence(void *state, double *est) {
  SteerState *s = state;
  return evidence_log(&s->ev, est);
}

static bool steer_log_evidence_se(void *state, double *se) {
  SteerState *s = state;
  return evidence_se(&s->ev, se);
}

static const char *steer_notes(void *state) {
  SteerState *s = state;
  double logz;
  if (!evidence_log(&s->ev, &logz)) return "";
  return gc_printf(
      "steer: %d run%s of %d particles (%s), up to %ld token steps, %ld %s resamplings, min "
      "ESS %.1f; LM: %ld batched evals, %ld tokens decoded, %ld tokens drawn, %ld contexts "
      "shared, %ld forks; %ld particles stopped by conditions%s%s; log evidence %.4f",
      s->ev.nruns, s->ev.nruns == 1 ? "" : "s", s->N,
      s->select == SEL_ALL ? "draws = particles per run"
      : s->select == SEL_BEST ? "best of N: one draw per run"
                              : "majority vote: one draw per run",
      s->steps, s->resamplings, resample_name(s->scheme),
      s->ess_min, s->evals, s->decoded, s->drawn, s->shared, s->forks, s->dead,
      s->dropped ? gc_printf(", %ld dropped unfinished by --budget", s->dropped) : "",
      s->killed ? gc_printf(", %ld killed by runtime errors", s->killed) : "",
      logz);
}

static void steer_free(void *state) { steer_release_all(state); }

static const OptSpec steer_options[] = {
    {.name = "select", .type = OPT_ENUM, .def = "all", .choices = steer_select_names,
     .arg = "HOW",
     .help = "steer: the draws of a run: all (every particle, weighted), best (best-of-N: the "
             "heaviest particle), vote (weighted majority vote over the program's last string output)"},
    {.name = "budget", .type = OPT_INT, .def = "0", .ilo = 0, .ihi = INT64_MAX, .arg = "T",
     .help = "steer: tokens a run may draw, all particles together (particles x tokens); "
             "particles unfinished when it is spent are dropped; 0: no limit"},
    OPT_END,
};

const EngineVT engine_steer = {
    .name = "steer",
    .summary = "SMC steering of language models: particles batched per token, with log evidence",
    .nstats = 1,
    .stat_names = {"log_weight__"},
    .weighted = true,
    .uses_warmup = false,
    .traits = ENGINE_DISCRETE | ENGINE_DYNAMIC,
    .options = {particle_options, resample_options, steer_options},
    .init = steer_init,
    .step = steer_step,
    .free = steer_free,
    .log_evidence = steer_log_evidence,
    .log_evidence_se = steer_log_evidence_se,
    .chain_notes = steer_notes,
};
