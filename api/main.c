/* main.c — the `ppl` command: a host program of libppl like any other, using
 * only ppl.h.  Parses the command line, compiles the model, loads data and
 * runs an engine; every failure is a message naming the place and an exit
 * status from sysexits (64 usage, 65 model or data error, 66 unreadable input,
 * 70 internal error or out of memory, 73 output file not writable; 130 after
 * Ctrl-C, as a shell reports SIGINT).  The engines' options are
 * not spelled out here: they are parsed with ppl_run_set, and `--help` and
 * `ppl help options --markdown` are generated from ppl_engine_options. */
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_mpi.h"
#include "ppl.h"
#include "show.h"

enum { EX_OK = 0, EX_USAGE_ = 64, EX_DATAERR_ = 65, EX_NOINPUT_ = 66, EX_SOFTWARE_ = 70,
       EX_CANTCREAT_ = 73, EX_INTERRUPTED = 130 };

static const char usage_text[] =
    "usage: ppl <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL.ppl [options]   run inference and print a summary\n"
    "  train MODEL.ppl --data F --save FILE [--amortize] [options]\n"
    "                            train the program's params once (its guide's encoders\n"
    "                            and the model's params, with svi's options; --amortize:\n"
    "                            a conditional flow over every latent, npe) and write\n"
    "                            them to FILE for 'run --load FILE' (engine amortized);\n"
    "                            Ctrl-C stops training and still writes FILE\n"
    "  check MODEL.ppl [--data F] [--deps] [--load FILE]\n"
    "                            print the structural analysis and the engine choice\n"
    "                            (without --data: sizes as declared, 'vector[N]');\n"
    "                            --deps: the latents' dependency graph as well;\n"
    "                            --load: the choice for a run with that trained file\n"
    "  learn-proposals MODEL.ppl [--data F] [--motif SIG] [--out DIR] [--steps N] [--seed N]\n"
    "                            train a learned MH proposal for each motif of the\n"
    "                            program (or SIG) on simulations of the motif, into the\n"
    "                            library DIR (default $XDG_DATA_HOME/ppl/proposals) that\n"
    "                            'run --engine lmh --proposals DIR' reads\n"
    "  ir MODEL.ppl              print the intermediate representation\n"
    "  ir --llvm MODEL.ppl [--data F]\n"
    "                            print the optimised LLVM IR of the compiled log density\n"
    "  exec MODEL.ppl [--data F] [--seed N] [--json] [--quiet]\n"
    "                            run the program once forward (latents from the prior)\n"
    "                            and print its values, one 'name = value' a line (--json:\n"
    "                            one JSON object; --quiet: only the program's print output)\n"
    "  summary FILE.csv... [--json F] [--quiet]\n"
    "                            the summary table and warnings of CSV draws (one file\n"
    "                            per chain; ppl's or CmdStan's), as the run printed them\n"
    "  generate MODEL.ppl [--data F] --draws FILE.csv... [--output F] [--seed N]\n"
    "                            the generated block recomputed for each draw of the\n"
    "                            files (CmdStan's standalone generated quantities)\n"
    "  help [options [--markdown]]\n"
    "                            this text; the engines' options (as docs/cli.md lists them)\n"
    "  version                   print the version\n"
    "\n"
    "options of run (the engines' follow; 'ppl run --engine NAME --help' shows one's):\n"
    "  --data FILE.json      data in CmdStan's JSON layout\n"
    "  --engine NAME         %s (default: chosen by\n"
    "                        analysis of the program, reason printed)\n"
    "  --output FILE.csv     draws in CmdStan's CSV layout (FILE_1.csv ... for chains > 1;\n"
    "                        '-' for stdout, then the summary goes to stderr)\n"
    "  --summary FILE.json   summary as JSON\n"
    "  --include NAME,...    only these outputs in the CSV and the summary\n"
    "  --exclude NAME,...    every output but these (lp__ and the engine's columns stay)\n"
    "  --quiet               no summary table on stdout (warnings still go to stderr)\n"
    "  --verbose             run: list the compiled log density's calls back into the\n"
    "                        interpreter (runtime calls), with their positions\n"
    "  --progress            progress of each chain on stderr (default when stderr is a\n"
    "                        terminal: bars redrawn in place; else plain lines)\n"
    "  --no-progress         no progress\n"
    "  --mpi-split MODE      under mpirun: auto (chains across ranks when there are at\n"
    "                        least as many chains as ranks, else each chain's work is\n"
    "                        split), chains or shard (docs/scaling.md)\n"
    "  --mpi-verbose         under mpirun: every rank writes its messages, not rank 0 alone\n";

/* The command's own options; the rest come from the engines' tables. */
static const char *const cli_valued[] = {"data", "engine", "output", "summary", "include", "exclude",
                                         "save", "out", "motif", "steps", "mpi-split", NULL};

/* The table entry of option name (common or any engine's), or 0. */
static int find_option(const char *name, ppl_option_info *out) {
  ppl_option_info buf[64];
  for (int e = -1; e < 0 || ppl_engine_name(e, NULL); e++) {
    int n = ppl_engine_options(e < 0 ? NULL : ppl_engine_name(e, NULL), buf, 64);
    for (int k = 0; k < n && k < 64; k++)
      if (!strcmp(buf[k].name, name)) return *out = buf[k], 1;
  }
  return 0;
}

/* "prior, is, mh, ..." into buf */
static const char *engine_list(char *buf, size_t size) {
  size_t len = 0;
  buf[0] = 0;
  for (int e = 0; ppl_engine_name(e, NULL) && len < size; e++)
    len += (size_t)snprintf(buf + len, size - len, "%s%s", e ? ", " : "",
                            ppl_engine_name(e, NULL));
  return buf;
}

/* Print text from column `col` on, wrapped at 79 columns with `indent`
 * spaces before continuation lines. */
static void print_wrapped(FILE *f, const char *text, int col, int indent) {
  const char *p = text;
  bool line_start = true; /* no word on this line yet */
  while (*p) {
    const char *word = p;
    while (*p && *p != ' ') p++;
    int len = (int)(p - word);
    if (!line_start && col + 1 + len > 79) {
      fprintf(f, "\n%*s", indent, "");
      col = indent;
    } else if (!line_start) {
      fputc(' ', f);
      col++;
    }
    line_start = false;
    fprintf(f, "%.*s", len, word);
    col += len;
    while (*p == ' ') p++;
  }
  fputc('\n', f);
}

/* The default as help and docs show it: reals with %g ("6.28319"); NULL for flags. */
static const char *show_default(const ppl_option_info *o, char *buf, size_t n) {
  if (!strcmp(o->type, "bool")) /* a flag on by default (advi's --average) says so */
    return !strcmp(o->def, "true") ? "on" : NULL;
  if (!*o->def) return NULL;
  if (strcmp(o->type, "real")) return o->def;
  snprintf(buf, n, "%g", strtod(o->def, NULL));
  return buf;
}

static void print_option(FILE *f, const ppl_option_info *o) {
  char buf[64];
  char head[64];
  int n = snprintf(head, sizeof head, "  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
  fputs(head, f);
  /* the help in column 28, on the next line after a long name */
  if (n < 27) fprintf(f, "%*s", 28 - n, "");
  else fprintf(f, "\n%28s", "");
  const char *def = show_default(o, buf, sizeof buf);
  /* "the resampling scheme: systematic, multinomial, stratified or residual
     (default systematic)" */
  char text[512];
  size_t len = (size_t)snprintf(text, sizeof text, "%s", o->help);
  for (int k = 0; o->choices && o->choices[k] && len < sizeof text; k++)
    len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", k == 0 ? ": " : o->choices[k + 1] ? ", " : " or ",
                            o->choices[k]);
  if (def && len < sizeof text) snprintf(text + len, sizeof text - len, " (default %s)", def);
  print_wrapped(f, text, 28, 28);
}

/* The options of one engine (NULL: of every engine) under a heading. */
static void print_engine_options(FILE *f, const char *engine) {
  ppl_option_info buf[64];
  int n = ppl_engine_options(engine, buf, 64);
  if (!engine) {
    fputs("options of every engine:\n", f);
  } else {
    const char *summary = "";
    for (int e = 0; ppl_engine_name(e, NULL); e++)
      if (!strcmp(ppl_engine_name(e, &summary), engine)) break;
    char head[512];
    snprintf(head, sizeof head, "%s — %s:", engine, summary);
    print_wrapped(f, head, 0, 4);
    if (n == 0) fputs("  (no options of its own)\n", f);
  }
  for (int k = 0; k < n && k < 64; k++) print_option(f, &buf[k]);
}

/* `ppl help`, `ppl run --help`: usage, then the options of every engine (or of one). */
static void print_help(FILE *f, const char *engine) {
  char engines[256];
  fprintf(f, usage_text, engine_list(engines, sizeof engines));
  fputc('\n', f);
  print_engine_options(f, NULL);
  for (int e = 0; ppl_engine_name(e, NULL); e++)
    if (!engine || !strcmp(engine, ppl_engine_name(e, NULL))) {
      fputc('\n', f);
      print_engine_options(f, ppl_engine_name(e, NULL));
    }
}

/* "integer, 1 to 1024", "number > 0", "diag, dense, unit" */
static void md_value(FILE *f, const ppl_option_info *o) {
  if (!strcmp(o->type, "int")) {
    fprintf(f, "integer, %lld to %lld", (long long)o->imin, (long long)o->imax);
  } else if (!strcmp(o->type, "real")) {
    if (isinf(o->max)) fprintf(f, "number %s %g", o->min_open ? ">" : "≥", o->min);
    else fprintf(f, "number, %g to %g", o->min, o->max);
  } else if (!strcmp(o->type, "bool")) {
    fputs("flag", f);
  } else if (!strcmp(o->type, "text")) {
    fputs("text", f);
  } else {
    for (int k = 0; o->choices[k]; k++) fprintf(f, "%s`%s`", k ? ", " : "", o->choices[k]);
  }
}

static void md_table(FILE *f, const char *engine) {
  ppl_option_info buf[64];
  int n = ppl_engine_options(engine, buf, 64);
  if (n == 0) {
    fputs("No options of its own.\n", f);
    return;
  }
  fputs("| option | value | default | meaning |\n|---|---|---|---|\n", f);
  for (int k = 0; k < n && k < 64; k++) {
    const ppl_option_info *o = &buf[k];
    fprintf(f, "| `--%s%s", o->name, o->arg ? " " : "");
    for (const char *c = o->arg ? o->arg : ""; *c; c++) /* "R|FILE": a | splits a table cell */
      fputs(*c == '|' ? "\\|" : (char[]){*c, 0}, f);
    fputs("` | ", f);
    md_value(f, o);
    char dbuf[64];
    const char *def = show_default(o, dbuf, sizeof dbuf);
    fprintf(f, " | %s | %s |\n", def ? def : "off", o->help);
  }
}

/* `ppl help options --markdown`: the section of docs/cli.md generated from
 * the engines' option tables (a test checks that the file has it verbatim). */
static void print_markdown(FILE *f) {
  fputs("### Options of every engine\n\n", f);
  md_table(f, NULL);
  for (int e = 0; ppl_engine_name(e, NULL); e++) {
    const char *summary;
    const char *name = ppl_engine_name(e, &summary);
    fprintf(f, "\n### `%s`\n\n%c%s.\n\n", name, summary[0] >= 'a' && summary[0] <= 'z' ? summary[0] - 32 : summary[0],
            summary + 1);
    md_table(f, name);
  }
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "ppl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'ppl help' for usage)\n");
  return EX_USAGE_;
}

/* Exit status for a library error. */
static int exit_code(ppl_status s) {
  switch (s) {
  case PPL_OK: return EX_OK;
  case PPL_ERR_USAGE: return EX_USAGE_;
  case PPL_ERR_SYNTAX:
  case PPL_ERR_TYPE:
  case PPL_ERR_DATA:
  case PPL_ERR_RUNTIME: return EX_DATAERR_;
  case PPL_ERR_IO: return EX_NOINPUT_;
  case PPL_ERR_INTERRUPTED: return EX_INTERRUPTED;
  default: return EX_SOFTWARE_; /* internal errors, out of memory */
  }
}

/* Print the error with the offending source line and a caret under the column. */
static int report(ppl_context *ctx) {
  const char *file = NULL;
  int line = 0, col = 0;
  ppl_status s = ppl_errpos(ctx, &file, &line, &col);
  /* usage errors carry no place: say who is speaking, as for option errors */
  /* the error's first line, the source excerpt, then any hint lines */
  const char *msg = ppl_errmsg(ctx), *hint = strchr(msg, '\n');
  fprintf(stderr, "%s%.*s\n", s == PPL_ERR_USAGE ? "ppl: " : "",
          hint ? (int)(hint - msg) : (int)strlen(msg), msg);
  if (file && line > 0 && col > 0) {
    FILE *f = fopen(file, "r");
    if (f) {
      char buf[4096];
      int ln = 1;
      while (fgets(buf, sizeof buf, f)) {
        if (ln == line) {
          size_t n = strcspn(buf, "\r\n");
          buf[n] = 0;
          if (n < 300) {
            fprintf(stderr, "  %s\n  ", buf);
            for (int i = 1; i < col && (size_t)i <= n; i++) fputc(buf[i - 1] == '\t' ? '\t' : ' ', stderr);
            fprintf(stderr, "^\n");
          }
          break;
        }
        if (strchr(buf, '\n')) ln++;
      }
      fclose(f);
    }
  }
  if (hint) fprintf(stderr, "%s\n", hint + 1);
  return exit_code(s);
}

typedef struct Args {
  const char *cmd, *model, *data, *engine, *output, *summary;
  const char *save, *load; /* train --save FILE; --load FILE (also set in ro) */
  const char *out, *motif, *steps, *proposals; /* learn-proposals; --proposals DIR */
  int amortize;            /* train --amortize */
  const char *include, *exclude; /* --include / --exclude NAME,... */
  int quiet, llvm, help, markdown, deps, json;
  const char *mpi_split; int mpi_verbose; /* --mpi-split MODE, --mpi-verbose */
  int verbose; /* run --verbose */
  int progress; /* --progress 1, --no-progress 0, neither -1 (on when stderr is a terminal) */
  ppl_run_options ro; /* the engines' options, set by name from their tables */
  ppl_run_options lm; /* the --lm options alone, for exec (its run takes no others) */
} Args;

static int parse_args(int argc, char **argv, Args *a) {
  for (int i = 2; i < argc; i++) {
    const char *o = argv[i];
    const char *val = NULL;
    if (o[0] == '-' && o[1] == '-') {
      /* --opt=value or --opt value */
      char name[64];
      const char *eq = strchr(o, '=');
      size_t n = eq ? (size_t)(eq - o) : strlen(o);
      if (n >= sizeof name) return usage_error("unknown option '%s'", o);
      memcpy(name, o, n);
      name[n] = 0;
      const char *bare = name + 2;
      if (!strcmp(bare, "progress") || !strcmp(bare, "no-progress")) {
        if (eq) return usage_error("%s takes no value", name);
        a->progress = bare[0] == 'p';
        continue;
      }
      if (!strcmp(bare, "mpi-verbose")) {
        if (eq) return usage_error("%s takes no value", name);
        a->mpi_verbose = 1;
        continue;
      }
      if (!strcmp(bare, "verbose")) {
        if (eq) return usage_error("%s takes no value", name);
        if (strcmp(a->cmd, "run")) return usage_error("%s is an option of run", name);
        a->verbose = 1;
        continue;
      }
      if (!strcmp(bare, "amortize")) {
        if (eq) return usage_error("%s takes no value", name);
        if (strcmp(a->cmd, "train")) return usage_error("%s is an option of train", name);
        a->amortize = 1;
        continue;
      }
      if (!strcmp(bare, "quiet") || !strcmp(bare, "llvm") || !strcmp(bare, "help") ||
          !strcmp(bare, "markdown") || !strcmp(bare, "deps") || !strcmp(bare, "json")) {
        if (eq) return usage_error("%s takes no value", name);
        if (bare[0] == 'q') a->quiet = 1;
        else if (bare[0] == 'l') a->llvm = 1;
        else if (bare[0] == 'h') a->help = 1;
        else if (bare[0] == 'd') a->deps = 1;
        else if (bare[0] == 'j') a->json = 1;
        else a->markdown = 1;
        continue;
      }
      int own = 0;
      for (int k = 0; cli_valued[k]; k++)
        if (!strcmp(bare, cli_valued[k])) own = 1;
      ppl_option_info info;
      if (!own && !find_option(bare, &info)) {
        ppl_run_set(&a->ro, bare, ""); /* for its message, with a suggestion */
        return usage_error("%s", ppl_run_options_errmsg(&a->ro));
      }
      if (!own && !strcmp(info.type, "bool")) { /* a flag */
        if (eq) return usage_error("%s takes no value", name);
        val = "true";
      } else {
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else return usage_error("option %s needs a value", name);
        /* "--output --quiet": the value is missing, not named --quiet (a
           negative number such as "--seed -1" reaches its range message) */
        if (!eq && val[0] == '-' && val[1] == '-' && val[2] != 0 && !(val[2] >= '0' && val[2] <= '9'))
          return usage_error("option %s needs a value", name);
        if (!*val) return usage_error("option %s needs a non-empty value", name);
      }
      if (!strcmp(bare, "data")) a->data = val;
      else if (!strcmp(bare, "engine")) a->engine = val;
      else if (!strcmp(bare, "output")) a->output = val;
      else if (!strcmp(bare, "summary")) a->summary = val;
      else if (!strcmp(bare, "include")) a->include = val;
      else if (!strcmp(bare, "exclude")) a->exclude = val;
      else if (!strcmp(bare, "mpi-split")) a->mpi_split = val;
      else if (!strcmp(bare, "save") && strcmp(a->cmd, "train"))
        return usage_error("--save is an option of train (ppl train MODEL.ppl --save FILE); "
                           "%s", "the engines save their fits with --save-params");
      else if (!strcmp(bare, "save")) a->save = val;
      else if ((!strcmp(bare, "out") || !strcmp(bare, "motif") || !strcmp(bare, "steps")) &&
               strcmp(a->cmd, "learn-proposals"))
        return usage_error("%s is an option of learn-proposals", name);
      else if (!strcmp(bare, "out")) a->out = val;
      else if (!strcmp(bare, "motif")) a->motif = val;
      else if (!strcmp(bare, "steps")) a->steps = val;
      else if (ppl_run_set(&a->ro, bare, val) != PPL_OK)
        return usage_error("%s", ppl_run_options_errmsg(&a->ro));
      if (!strcmp(bare, "lm")) ppl_run_set(&a->lm, bare, val);
      if (!strcmp(bare, "load")) a->load = val;
      if (!strcmp(bare, "proposals")) a->proposals = val;
    } else if (o[0] == '-' && o[1]) {
      return usage_error("unknown option '%s'", o);
    } else if (!a->model) {
      a->model = o;
    } else {
      return usage_error("unexpected argument '%s' (one model file per run)", o);
    }
  }
  return EX_OK;
}

/* The library's words for a missing data set, and the command's. */
static const char no_data_api[] = " (no data: call ppl_set_data_json/ppl_set_data_file first)";
static const char no_data_cli[] = " (the model has a data block: pass --data FILE.json)";

static int cmd_model(ppl_context *ctx, const Args *a, ppl_model **m) {
  if (!a->model) return usage_error("%s needs a model file", a->cmd);
  if (ppl_compile_file(ctx, a->model, m) != PPL_OK) return report(ctx);
  for (int i = 0; i < ppl_model_num_warnings(*m); i++)
    fprintf(stderr, "%s\n", ppl_model_warning(*m, i));
  if (a->data) {
    /* train --amortize simulates the observed values: data without them are fine */
    if (ppl_set_data_file(*m, a->data) != PPL_OK &&
        !(a->amortize && ppl_errpos(ctx, NULL, NULL, NULL) == PPL_ERR_DATA))
      return report(ctx);
  } else if (ppl_data_commit(*m) != PPL_OK) {
    /* no --data: fine when the program declares no data; if not, say it in
       the command's terms */
    const char *msg = ppl_errmsg(ctx);
    size_t n = strlen(msg), k = sizeof no_data_api - 1;
    if (n >= k && !strcmp(msg + n - k, no_data_api)) {
      if (!strcmp(a->cmd, "check")) { /* the structure from the declarations alone */
        printf("data: none given (--data FILE.json): sizes as declared\n");
        return EX_OK;
      }
      fprintf(stderr, "%.*s%s\n", (int)(n - k), msg, no_data_cli);
      return EX_DATAERR_;
    }
    return report(ctx);
  }
  return EX_OK;
}

/* Ctrl-C: the first asks the run to stop after the current iteration (the
 * draws so far are summarised), the second ends the process at once.  Only
 * async-signal-safe calls here: ppl_interrupt, write, _exit. */
static ppl_context *volatile sigint_ctx;
static volatile sig_atomic_t sigint_count;

static void on_sigint(int sig) {
  (void)sig;
  if (sigint_count++ > 0 || !sigint_ctx) _exit(EX_INTERRUPTED);
  ppl_interrupt(sigint_ctx);
  static const char msg[] = "\nppl: interrupted: stopping after the current iteration "
                            "(Ctrl-C again to quit at once)\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
}

static void catch_sigint(ppl_context *ctx) {
  sigint_ctx = ctx;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART; /* writes of the CSV go on */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

static void learn_progress(void *ctx, const char *motif, long step, long steps, double loss) {
  (void)ctx;
  fprintf(stderr, "learn-proposals: %s: step %ld/%ld, loss %.4f\n", motif, step, steps, loss);
}

/* `ppl learn-proposals MODEL.ppl [--motif SIG] [--out DIR] [--steps N]`: a
 * proposal network per motif, written into the library directory. */
static int cmd_learn(ppl_context *ctx, Args *a, ppl_model *m) {
  ppl_learn_options lo;
  ppl_learn_options_default(&lo);
  lo.motif = a->motif;
  lo.out_dir = a->out ? a->out : a->proposals;
  lo.seed = a->ro.seed;
  if (a->steps) {
    char *end;
    long v = strtol(a->steps, &end, 10);
    if (*end || v < 0 || v > 100000000)
      return usage_error("--steps expects an integer from 0 to 100000000, got '%s'", a->steps);
    lo.steps = v;
  }
  if (a->progress != 0) lo.progress = learn_progress;
  int n = 0;
  if (ppl_learn_proposals(m, &lo, &n) != PPL_OK) return report(ctx);
  if (!a->quiet)
    printf("learn-proposals: %d proposal%s written to %s\n", n, n == 1 ? "" : "s",
           lo.out_dir ? lo.out_dir : ppl_default_proposals_dir());
  return EX_OK;
}

/* `ppl train MODEL.ppl --data F --save FILE [--amortize] [options]`: one fit
 * through ppl_train, a progress line on stderr (on unless --no-progress),
 * then what it did.  After Ctrl-C the file holds what was trained and the
 * exit status is 130, so that `ppl train ... && ppl run ...` does not go on
 * with a half-trained network unnoticed. */
static int cmd_train(ppl_context *ctx, Args *a, ppl_model *m) {
  if (!a->save) return usage_error("%s needs --save FILE (where the trained params go)", "train");
  if (a->engine)
    return usage_error("train takes no --engine ('%s'): it trains a program's guide with svi, "
                       "or with --amortize the whole program", a->engine);
  ppl_run_options ro = a->ro; /* shares the options set by name; freed once, by main */
  ro.engine = a->amortize ? "amortized" : NULL;
  ro.output_csv = a->output;
  ro.summary_json = a->summary;
  ro.include = a->include;
  ro.exclude = a->exclude;
  ro.progress = a->progress != 0 ? PPL_PROGRESS_AUTO : PPL_PROGRESS_OFF;
  ppl_train_info info;
  catch_sigint(ctx);
  if (ppl_train(m, &ro, a->save, &info) != PPL_OK) return report(ctx);
  if (!a->quiet) {
    char what[160];
    if (!strcmp(info.method, "npe"))
      snprintf(what, sizeof what, "%ld simulations, %.0f epochs, held-out loss %.6g",
               info.steps, info.epochs, info.loss);
    else if (info.examples > 0)
      snprintf(what, sizeof what, "%ld steps, %.2f epochs (%ld examples), ELBO %.6g",
               info.steps, info.epochs, info.examples, info.elbo);
    else
      snprintf(what, sizeof what, "%ld steps, ELBO %.6g", info.steps, info.elbo);
    printf("%s: %s in %.1f s; %s %s (run it with --load %s)\n",
           info.interrupted ? "interrupted" : "trained", what, info.seconds,
           info.interrupted ? "saved what it had to" : "saved", a->save, a->save);
  }
  return info.interrupted ? EX_INTERRUPTED : EX_OK;
}

/* `ppl summary FILE.csv... [--json F] [--quiet]`: the table (and warnings)
 * of the run that wrote the files, as stansummary gives CmdStan's. */
static int cmd_summary(int argc, char **argv) {
  const char **files = calloc((size_t)argc, sizeof *files);
  const char *json = NULL;
  const char *bad = NULL;
  int n = 0, quiet = 0;
  if (!files) return fprintf(stderr, "ppl: out of memory\n"), EX_SOFTWARE_;
  for (int i = 2; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--help")) return free(files), print_help(stdout, NULL), EX_OK;
    if (!strcmp(o, "--quiet")) quiet = 1;
    else if (!strncmp(o, "--json=", 7) && o[7]) json = o + 7;
    else if (!strcmp(o, "--json") && i + 1 < argc && argv[i + 1][0]) json = argv[++i];
    else if (!strcmp(o, "--json") || !strncmp(o, "--json=", 7)) bad = "option %s needs a value";
    else if (o[0] == '-' && o[1]) bad = "unknown option '%s' (summary takes --json FILE and --quiet)";
    else files[n++] = o;
    if (bad) {
      free(files);
      return usage_error(bad, !strncmp(o, "--json", 6) ? "--json" : o);
    }
  }
  if (n == 0) {
    free(files);
    return usage_error("%s needs CSV files (one per chain)", "summary");
  }
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_result *r = NULL;
  int rc = EX_OK;
  if (!ctx) rc = (fprintf(stderr, "ppl: out of memory\n"), EX_SOFTWARE_);
  else if (ppl_result_from_csv(ctx, n, files, &r) != PPL_OK ||
           (json && ppl_result_write_summary(r, json) != PPL_OK))
    rc = report(ctx);
  else if (!quiet)
    fputs(ppl_result_summary_text(r), stdout);
  else
    fputs(ppl_result_warnings_text(r), stderr);
  ppl_result_free(r);
  ppl_context_free(ctx);
  free(files);
  return rc;
}

/* `ppl generate MODEL.ppl [--data F] --draws FILE.csv... [--output F]
 * [--seed N]`: CmdStan's standalone generated quantities. */
static int cmd_generate(int argc, char **argv) {
  const char **files = calloc((size_t)argc, sizeof *files);
  Args a = {.cmd = "generate"};
  const char *output = "-", *seed_text = "1";
  int n = 0, in_draws = 0;
  if (!files) return fprintf(stderr, "ppl: out of memory\n"), EX_SOFTWARE_;
  int rc = EX_OK;
  for (int i = 2; i < argc && rc == EX_OK; i++) {
    char name[16] = "";
    const char *o = argv[i], *eq = strchr(o, '=');
    if (o[0] == '-' && o[1] == '-' && eq && eq - o < (int)sizeof name) /* --opt=value */
      memcpy(name, o, (size_t)(eq - o));
    else
      snprintf(name, sizeof name, "%s", o), eq = NULL;
    const char **val = !strcmp(name, "--data") ? &a.data : !strcmp(name, "--output") ? &output
                     : !strcmp(name, "--seed") ? &seed_text : NULL;
    const char *v = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(o, "--help")) return free(files), print_help(stdout, NULL), EX_OK;
    if (val && !*v) rc = usage_error("option %s needs a value", name);
    else if (val) *val = v, i += !eq, in_draws = 0;
    else if (!strcmp(o, "--draws")) in_draws = 1;
    else if (o[0] == '-' && o[1])
      rc = usage_error("unknown option '%s' (generate takes --data, --draws, --output, --seed)", o);
    else if (in_draws) files[n++] = o;
    else if (!a.model) a.model = o;
    else rc = usage_error("unexpected argument '%s' (the draws follow --draws)", o);
  }
  char *end;
  unsigned long long seed = strtoull(seed_text, &end, 10);
  if (rc == EX_OK && (*end || seed_text[0] == '-'))
    rc = usage_error("--seed expects a non-negative integer, got '%s'", seed_text);
  if (rc == EX_OK && n == 0) rc = usage_error("%s needs --draws FILE.csv (one file per chain)", "generate");
  ppl_context *ctx = rc == EX_OK ? ppl_context_new(NULL) : NULL;
  ppl_model *m = NULL;
  if (rc == EX_OK && !ctx) rc = (fprintf(stderr, "ppl: out of memory\n"), EX_SOFTWARE_);
  if (rc == EX_OK && (rc = cmd_model(ctx, &a, &m)) == EX_OK &&
      ppl_generate(m, n, files, output, (uint64_t)seed) != PPL_OK)
    rc = report(ctx);
  ppl_model_free(m);
  ppl_context_free(ctx);
  free(files);
  return rc;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const void *mpi_world = cli_mpi_start(&argc, &argv); /* NULL: not under mpirun */
  if (argc < 2) {
    print_help(stderr, NULL);
    return EX_USAGE_;
  }
  Args a = {0};
  a.cmd = argv[1];
  a.progress = -1;
  if (!strcmp(a.cmd, "help") || !strcmp(a.cmd, "--help") || !strcmp(a.cmd, "-h")) {
    /* ppl help [options [--markdown]] */
    if (argc > 2 && !strcmp(argv[2], "options")) {
      if (argc > 3 && !strcmp(argv[3], "--markdown")) print_markdown(stdout);
      else
        for (int e = -1; e < 0 || ppl_engine_name(e, NULL); e++) {
          if (e >= 0) fputc('\n', stdout);
          print_engine_options(stdout, e < 0 ? NULL : ppl_engine_name(e, NULL));
        }
    } else {
      print_help(stdout, NULL);
    }
    return EX_OK;
  }
  if (!strcmp(a.cmd, "version") || !strcmp(a.cmd, "--version")) {
    printf("ppl %s\n", ppl_version_string());
    return EX_OK;
  }
  if (!strcmp(a.cmd, "summary")) return cmd_summary(argc, argv);
  if (!strcmp(a.cmd, "generate")) return cmd_generate(argc, argv);
  if (strcmp(a.cmd, "run") && strcmp(a.cmd, "check") && strcmp(a.cmd, "ir") && strcmp(a.cmd, "exec") &&
      strcmp(a.cmd, "train") && strcmp(a.cmd, "learn-proposals"))
    return usage_error("unknown command '%s'", a.cmd);
  ppl_run_options_default(&a.ro);
  ppl_run_options_default(&a.lm);
  int rc = parse_args(argc, argv, &a);
  if (rc == EX_OK && a.help) {
    if (a.engine && ppl_engine_options(a.engine, NULL, 0) < 0)
      rc = usage_error("unknown engine '%s'", a.engine);
    else
      print_help(stdout, a.engine);
  }
  if (rc == EX_OK && a.json && strcmp(a.cmd, "exec"))
    rc = usage_error("%s is an option of exec (ppl exec MODEL.ppl --json)", "--json");
  if (rc == EX_OK && mpi_world && cli_mpi_rank() != 0 && !a.mpi_verbose) {
    /* rank 0 writes the messages; the other ranks' go nowhere */
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) rc = EX_SOFTWARE_;
  }
  if (rc == EX_OK && a.mpi_split && strcmp(a.mpi_split, "auto") && strcmp(a.mpi_split, "chains") &&
      strcmp(a.mpi_split, "shard"))
    rc = usage_error("--mpi-split expects auto, chains or shard, got '%s'", a.mpi_split);
  else if (rc == EX_OK && mpi_world && ppl_run_set_mpi(&a.ro, mpi_world, a.mpi_split) != PPL_OK)
    rc = usage_error("%s", ppl_run_options_errmsg(&a.ro));
  else if (rc == EX_OK && cli_mpi_size() > 1 && !strcmp(a.cmd, "learn-proposals"))
    rc = usage_error("%s trains in one process: run it without mpirun (or with -n 1)", a.cmd);
  else if (rc == EX_OK && a.mpi_split && !mpi_world)
    rc = usage_error("%s", "--mpi-split applies under mpirun only");
  if (rc != EX_OK || a.help) {
    ppl_run_options_free(&a.ro);
    return rc;
  }

  ppl_context *ctx = ppl_context_new(NULL);
  if (!ctx) {
    fprintf(stderr, "ppl: out of memory\n");
    ppl_run_options_free(&a.ro);
    return EX_SOFTWARE_;
  }
  ppl_model *m = NULL;
  ppl_result *r = NULL;

  if (!strcmp(a.cmd, "ir") && a.llvm) { /* the compiled log density: needs the data */
    if ((rc = cmd_model(ctx, &a, &m)) != EX_OK) goto done;
    const char *text = ppl_model_llvm_ir(m);
    if (!text) rc = report(ctx);
    else fputs(text, stdout);
    goto done;
  }
  if (!strcmp(a.cmd, "ir")) {
    if (!a.model) rc = usage_error("%s needs a model file", a.cmd);
    else if (ppl_compile_file(ctx, a.model, &m) != PPL_OK) rc = report(ctx);
    else fputs(ppl_model_ir(m), stdout);
    goto done;
  }
  if ((rc = cmd_model(ctx, &a, &m)) != EX_OK) goto done;

  if (!strcmp(a.cmd, "train")) {
    rc = cmd_train(ctx, &a, m);
    goto done;
  }
  if (!strcmp(a.cmd, "learn-proposals")) {
    rc = cmd_learn(ctx, &a, m);
    goto done;
  }

  if (!strcmp(a.cmd, "check")) {
    const char *text = ppl_model_analysis(m);
    const char *name, *why = NULL;
    /* the learned-proposal motifs, when the program has any (engine lmh) */
    const char *motifs = text ? ppl_model_motifs(m, a.proposals) : NULL;
    if (motifs && !strstr(motifs, "\n  finite->")) motifs = NULL;
    if (text && (a.load || motifs)) { /* the choice for a run with the trained file */
      ppl_run_options ro = a.ro;
      ro.engine = a.engine;
      if (ppl_run_engine(m, &ro, &name, &why) != PPL_OK) {
        rc = report(ctx);
        goto done;
      }
    }
    const char *last = text ? strstr(text, "\nengine: ") : NULL;
    if (!text) rc = report(ctx);
    else if (why && last) printf("%.*s\nengine: %s\n", (int)(last - text), text, why);
    else fputs(text, stdout);
    if (text && a.deps) fputs(ppl_model_dependencies(m), stdout);
    if (motifs) fputs(motifs, stdout);
    goto done;
  }

  ppl_run_options ro;
  ppl_run_options_default(&ro);
  if (!strcmp(a.cmd, "exec")) { /* one forward run: only the seed applies */
    ro = a.lm; /* its language models (--lm), nothing else by name */
    ro.seed = a.ro.seed;
    ro.engine = "prior";
    ro.chains = 1;
    ro.draws = 1;
    ro.warmup = 0;
  } else {
    ro = a.ro; /* shares the options set by name; freed once, below */
    ro.engine = a.engine;
    ro.output_csv = a.output;
    ro.summary_json = a.summary;
    ro.include = a.include;
    ro.exclude = a.exclude;
  }
  /* the library draws bars on a terminal and plain lines elsewhere */
  if (strcmp(a.cmd, "run")) ro.progress = PPL_PROGRESS_OFF;
  else ro.progress = a.progress > 0 || (a.progress < 0 && isatty(2)) ? PPL_PROGRESS_AUTO : PPL_PROGRESS_OFF;
  if (strcmp(a.cmd, "exec")) {
    const char *name, *why;
    if (ppl_run_engine(m, &ro, &name, &why) != PPL_OK || ppl_run_check(m, &ro) != PPL_OK) {
      rc = report(ctx);
      goto done;
    }
    fprintf(stderr, "engine: %s\n", why);
  }
  if (a.verbose) { /* run --verbose: how svi trains the plates */
    const char *plates = ppl_model_plates(m);
    if (plates) fputs(plates, stderr);
  }
  if (a.verbose && !ro.no_jit) { /* run --verbose: what still calls back into the interpreter */
    const char *calls = ppl_model_runtime_calls(m);
    if (calls) fputs(calls, stderr);
    else fprintf(stderr, "backend: interpreter (%s)\n", ppl_errmsg(ctx));
  }
  if (!strcmp(a.cmd, "run")) catch_sigint(ctx);
  if (ppl_run(m, &ro, &r) != PPL_OK) {
    rc = report(ctx);
    goto done;
  }
  if (!strcmp(a.cmd, "run") && !a.quiet) {
    /* with the draws on stdout (--output -) the table goes to stderr */
    FILE *to = a.output && !strcmp(a.output, "-") ? stderr : stdout;
    const char *table = ppl_result_summary_text(r);
    fputs(table, to);
    if (*table && table[strlen(table) - 1] != '\n') fputc('\n', to);
  } else if (!strcmp(a.cmd, "run")) {
    /* --quiet keeps the table back, never the warnings */
    fputs(ppl_result_warnings_text(r), stderr);
  }
  if (!strcmp(a.cmd, "exec") && !a.quiet) show_values(stdout, r, a.json);
  if (ppl_result_interrupted(r)) rc = EX_INTERRUPTED;

done:
  ppl_result_free(r);
  ppl_model_free(m);
  ppl_context_free(ctx);
  ppl_run_options_free(&a.ro);
  ppl_run_options_free(&a.lm);
  return rc;
}
