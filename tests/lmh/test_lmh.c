/* test_lmh.c — learned MH proposals (engine lmh, inference/motif.c) through
 * the public API: the motifs and signatures `ppl check` lists, training
 * deterministic for a seed, proposal files refused for another motif or
 * another kind, and the engine repeating itself for a seed.  Exactness is
 * test_lmh_exact.c's (suite statistical).
 *
 *   test_lmh TESTS_LMH_DIR TESTS_EXACT_DIR
 */
#include "lmh_util.h"

static const char *exact_dir;

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  *len = fread(s, 1, (size_t)n, f);
  s[*len] = 0;
  fclose(f);
  return s;
}

static ppl_model *exact_model(ppl_context *ctx, const char *name) {
  char path[1024], data[1024];
  snprintf(path, sizeof path, "%s/%s.ppl", exact_dir, name);
  snprintf(data, sizeof data, "%s/problems/%s/data.json", exact_dir, name);
  ppl_model *m = NULL;
  if (ppl_compile_file(ctx, path, &m) != PPL_OK || ppl_set_data_file(m, data) != PPL_OK) {
    tap_diag("%s: %s", name, ppl_errmsg(ctx));
    return NULL;
  }
  return m;
}

static void test_motifs(ppl_context *ctx, const char *lib) {
  ppl_model *m = exact_model(ctx, "mix2_enum");
  const char *t = m ? ppl_model_motifs(m, lib) : NULL;
  tap_ok(t && strstr(t, "motifs: 14 blocks\n") &&
             strstr(t, "  finite->normal(mu): 12 blocks (z[1] ...), no trained proposal in ") &&
             strstr(t, "  normal->normal(mu): 2 blocks (mu1 ...), no trained proposal in "),
         "mix2_enum: 12 blocks z[n], each the motif finite->normal(mu), and the means mu1, mu2, "
         "normal->normal(mu) (%s)", t ? t : ppl_errmsg(ctx));
  ppl_model_free(m);
  /* the number of components is a parameter of the motif, not of its signature */
  for (int K = 3; K <= 10; K += 7) {
    m = lmh_model(ctx, "mixk.ppl", mix_json(K, 20));
    t = m ? ppl_model_motifs(m, lib) : NULL;
    tap_ok(t && strstr(t, "  finite->normal(mu): 20 blocks (z[1] ...)"),
           "mixk K = %d: the same signature finite->normal(mu) (%s)", K, t ? t : ppl_errmsg(ctx));
    ppl_model_free(m);
  }
  m = grid_model(ctx, 3, 3, 7, NULL);
  t = m ? ppl_model_motifs(m, lib) : NULL;
  tap_ok(t && strstr(t, "motifs: 9 blocks\n") &&
             strstr(t, "  finite->bernoulli(theta): 9 blocks (x[1,1] ...)") &&
             strstr(t, "  finite-block->bernoulli(theta): 3 blocks (x[1,1] ...)"),
         "grid 3x3: 9 binary nodes, motif finite->bernoulli(theta) (children and co-parents "
         "through theta), and in 3 blocks of several cells, motif finite-block->bernoulli(theta) "
         "(a square, then a column and a row of the edge) (%s)", t ? t : ppl_errmsg(ctx));
  ppl_model_free(m);
  /* the blocks' number of cells is a parameter of the motif: 2 x 2 squares */
  m = grid_model(ctx, 4, 6, 7, NULL);
  t = m ? ppl_model_motifs(m, lib) : NULL;
  tap_ok(t && strstr(t, "motifs: 24 blocks\n") &&
             strstr(t, "  finite-block->bernoulli(theta): 6 blocks (x[1,1] ...)"),
         "grid 4x6: six 2 x 2 squares, the same signature (%s)", t ? t : ppl_errmsg(ctx));
  ppl_model_free(m);
  /* the exact marginals of bigger grids (lmh_bench) against enumeration */
  for (int R = 3; R <= 4; R++) {
    Grid g;
    double pe[GRID_MAX * GRID_MAX], pf[GRID_MAX * GRID_MAX], err = 0;
    grid_make(&g, R, 5, 17);
    grid_marginals(&g, pe);
    grid_marginals_frontier(&g, pf);
    for (int k = 0; k < R * 5; k++) err = fmax(err, fabs(pe[k] - pf[k]));
    tap_ok(err < 1e-12, "grid %dx5: marginals by elimination along the frontier = enumeration "
           "(max |diff| %.2g)", R, err);
  }
  /* hmm3: z[t]'s children are y[t] (normal(mu)) and z[t+1] (categorical(theta)) */
  m = exact_model(ctx, "hmm3");
  t = m ? ppl_model_motifs(m, lib) : NULL;
  tap_ok(t && strstr(t, "  finite->categorical(theta)+normal(mu): 99 blocks (z[1] ...), no trained "
                        "proposal in ") &&
             strstr(t, "  finite->normal(mu): 1 block (z[100]), no trained proposal in "),
         "hmm3: z[t] with two kinds of children, the last state with one (%s)", t ? t : ppl_errmsg(ctx));
  /* a motif of too many kinds of children, and one of a kind without features */
  ppl_learn_options lo;
  ppl_learn_options_default(&lo);
  lo.out_dir = lib;
  lo.motif = "finite->bernoulli(theta)+categorical(theta)+normal(mu)+normal(sigma)+poisson(lambda)";
  tap_ok(m && ppl_learn_proposals(m, &lo, NULL) == PPL_ERR_USAGE &&
             strstr(ppl_errmsg(ctx), "more than 4 kinds of children"),
         "--motif with five kinds of children: %s", ppl_errmsg(ctx));
  lo.motif = "finite->categorical(theta)+poisson(lambda)";
  tap_ok(m && ppl_learn_proposals(m, &lo, NULL) == PPL_ERR_USAGE &&
             strstr(ppl_errmsg(ctx), "no proposal for children 'poisson(lambda)'"),
         "--motif with a kind without features: %s", ppl_errmsg(ctx));
  ppl_model_free(m);
  /* a mean and the points located at it: a continuous motif; through a
     function (a regression's coefficients) it is one without a proposal */
  m = exact_model(ctx, "normal_mean");
  tap_ok(m && lmh_learn(m, lib, 10, 1) == 1, "normal_mean: learn-proposals trains mu's motif (%s)",
         ppl_errmsg(ctx));
  ppl_model_free(m);
  m = exact_model(ctx, "linreg_known_sigma");
  tap_ok(m && lmh_learn(m, lib, 10, 1) < 0 && strstr(ppl_errmsg(ctx), "has no motif this version can learn"),
         "linreg_known_sigma: learn-proposals refused (%s)", ppl_errmsg(ctx));
  ppl_model_free(m);
}

static void test_learn(ppl_context *ctx, const char *a, const char *b, const char *c) {
  ppl_model *m = lmh_model(ctx, "mixk.ppl", mix_json(3, 20));
  if (!tap_ok(m != NULL, "mixk compiles")) return;
  tap_ok(lmh_learn(m, a, 60, 5) == 2 && lmh_learn(m, b, 60, 5) == 2 && lmh_learn(m, c, 60, 6) == 2,
         "learn-proposals writes two proposals, z's and mu's (%s)", ppl_errmsg(ctx));
  char pa[1024], pb[1024], pc[1024];
  snprintf(pa, sizeof pa, "%s/finite-_normal_mu_.safetensors", a);
  snprintf(pb, sizeof pb, "%s/finite-_normal_mu_.safetensors", b);
  snprintf(pc, sizeof pc, "%s/finite-_normal_mu_.safetensors", c);
  size_t la = 0, lb = 0, lc = 0;
  char *fa = slurp(pa, &la), *fb = slurp(pb, &lb), *fc = slurp(pc, &lc);
  tap_ok(fa && fb && la == lb && !memcmp(fa, fb, la), "the same seed writes the same bytes");
  tap_ok(fa && fc && (la != lc || memcmp(fa, fc, la)), "another seed, other weights");
  tap_ok(fa && strstr(fa + 8, "\"signature\":\"finite->normal(mu)\"") && strstr(fa + 8, "\"kind\":\"lmh\""),
         "the file's metadata names its signature and kind");
  free(fa), free(fb), free(fc);
  const char *t = ppl_model_motifs(m, a);
  tap_ok(t && strstr(t, "finite->normal(mu): 20 blocks (z[1] ...), trained proposal in "),
         "check sees the trained proposal (%s)", t ? t : ppl_errmsg(ctx));
  ppl_learn_options lo;
  ppl_learn_options_default(&lo);
  lo.out_dir = a;
  lo.motif = "finite->poisson(lambda)";
  tap_ok(ppl_learn_proposals(m, &lo, NULL) == PPL_ERR_USAGE &&
             strstr(ppl_errmsg(ctx), "no proposal for children 'poisson(lambda)'"),
         "--motif with a signature this version cannot train: %s", ppl_errmsg(ctx));
  lo.motif = "normal(mu)";
  tap_ok(ppl_learn_proposals(m, &lo, NULL) == PPL_ERR_USAGE &&
             strstr(ppl_errmsg(ctx), "is not a motif signature"),
         "--motif that is no signature: %s", ppl_errmsg(ctx));
  ppl_model_free(m);
}

static ppl_status run_lmh(ppl_model *m, const char *lib, uint64_t seed, ppl_result **r) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "lmh";
  ro.chains = 1;
  ro.warmup = 50;
  ro.draws = 100;
  ro.seed = seed;
  ppl_run_set(&ro, "proposals", lib);
  ppl_status s = ppl_run(m, &ro, r);
  ppl_run_options_free(&ro);
  return s;
}

static void test_run(ppl_context *ctx, const char *lib, const char *bad) {
  ppl_model *m = lmh_model(ctx, "mixk.ppl", mix_json(5, 20));
  if (!tap_ok(m != NULL, "mixk K = 5 compiles")) return;
  ppl_result *r1 = NULL, *r2 = NULL;
  bool ok = run_lmh(m, lib, 9, &r1) == PPL_OK && run_lmh(m, lib, 9, &r2) == PPL_OK;
  tap_ok(ok, "lmh runs (%s)", ppl_errmsg(ctx));
  if (ok) {
    bool same = ppl_result_num_draws(r1) == ppl_result_num_draws(r2);
    int col = ppl_result_column_index(r1, "mu[1]");
    for (int d = 0; same && d < ppl_result_num_draws(r1); d++)
      same = ppl_result_draw(r1, 0, d, col) == ppl_result_draw(r2, 0, d, col);
    tap_ok(col >= 0 && same, "the same seed, the same draws");
    double acc = lmh_accepted(r1, "finite->normal(mu)");
    tap_ok(acc > 0, "the summary gives the learned moves' acceptance (%.3f)", acc);
  }
  ppl_result_free(r1);
  ppl_result_free(r2);
  /* the selector: a program whose discrete latents are all summed out by
     enumeration keeps nuts (its continuous latents move together); one that
     cannot be enumerated, every motif with a proposal in the library given,
     gets lmh */
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ppl_run_set(&ro, "proposals", lib);
  const char *name = NULL, *why = NULL;
  ppl_status st = ppl_run_engine(m, &ro, &name, &why);
  tap_ok(st == PPL_OK && name && !strcmp(name, "nuts") && strstr(why, "summed out by enumeration"),
         "an enumerable mixture keeps nuts, proposals or not (%s)", why ? why : ppl_errmsg(ctx));
  ppl_model *dyn = lmh_model(ctx, "dynamic.ppl", "{\"y1\": 0.5, \"y2\": 0.3}");
  st = dyn ? ppl_run_engine(dyn, &ro, &name, &why) : PPL_ERR_USAGE;
  tap_ok(st == PPL_OK && name && !strcmp(name, "lmh") &&
             strstr(why, "lmh — 1 block of motif finite->normal(mu) with trained proposals in "),
         "a program enumeration cannot take: the selector picks lmh and says why (%s)",
         why ? why : ppl_errmsg(ctx));
  ppl_run_options_free(&ro);
  ppl_run_options_default(&ro);
  char empty[1100];
  snprintf(empty, sizeof empty, "%s/none", bad);
  ppl_run_set(&ro, "proposals", empty);
  st = dyn ? ppl_run_engine(dyn, &ro, &name, &why) : PPL_ERR_USAGE;
  tap_ok(st == PPL_OK && name && !strcmp(name, "mh"),
         "without proposals for its motifs: mh (%s)", why ? why : ppl_errmsg(ctx));
  ppl_model_free(dyn);
  ppl_run_options_free(&ro);
  /* the acceptance rates in the summary JSON */
  char json[1100];
  snprintf(json, sizeof json, "%s/summary.json", bad);
  ppl_run_options_default(&ro);
  ro.engine = "lmh";
  ro.chains = 1, ro.warmup = 20, ro.draws = 20;
  ro.summary_json = json;
  ppl_run_set(&ro, "proposals", lib);
  ppl_result *rj = NULL;
  size_t jl = 0;
  char *jt = ppl_run(m, &ro, &rj) == PPL_OK ? slurp(json, &jl) : NULL;
  tap_ok(jt && strstr(jt, "\"notes\"") && strstr(jt, "finite->normal(mu) 20 blocks, 400 moves"),
         "the summary JSON's notes give the moves per motif");
  free(jt);
  ppl_result_free(rj);
  ppl_run_options_free(&ro);
  /* a file under the name of finite->normal(mu) that is another motif's */
  ppl_result *r = NULL;
  tap_ok(run_lmh(m, bad, 9, &r) != PPL_OK &&
             strstr(ppl_errmsg(ctx), "a proposal for motif 'finite->bernoulli(theta)', not 'finite->normal(mu)'"),
         "a proposal file for another signature is refused: %s", ppl_errmsg(ctx));
  ppl_result_free(r);
  ppl_model_free(m);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_lmh TESTS_LMH_DIR TESTS_EXACT_DIR\n");
    return 2;
  }
  lmh_dir = argv[1];
  exact_dir = argv[2];
  ppl_context *ctx = ppl_context_new(NULL);
  char *a = lmh_tmpdir(), *b = lmh_tmpdir(), *c = lmh_tmpdir(), *bad = lmh_tmpdir();
  test_motifs(ctx, a);
  test_learn(ctx, a, b, c);
  /* the grid's proposal, renamed to the mixture's file */
  ppl_model *m = grid_model(ctx, 2, 2, 3, NULL);
  char from[1200], to[1200];
  snprintf(from, sizeof from, "%s/finite-_bernoulli_theta_.safetensors", bad);
  snprintf(to, sizeof to, "%s/finite-_normal_mu_.safetensors", bad);
  tap_ok(m && lmh_learn(m, bad, 0, 1) == 2 && rename(from, to) == 0, "a bernoulli proposal, renamed");
  ppl_model_free(m);
  test_run(ctx, a, bad);
  ppl_context_free(ctx);
  char cmd[5000];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s' '%s'", a, b, c, bad);
  if (system(cmd) != 0) tap_diag("could not remove the temporary directories");
  return tap_done();
}
