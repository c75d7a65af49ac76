# stan_peer.R — rstan's NUTS on the Stan programs of bench/stan, for the
# benchmarks bench/nuts_bench and bench/pdb_bench (they run this and read its
# lines).  Stan's defaults (diag_e, adapt_delta 0.8, max depth 10), one core,
# chains one after another.  Prints one line per program:
#   stan NAME MIN_ESS_BULK CHAIN_CPU_S LEAPFROGS CALL_CPU_S
# MIN_ESS_BULK: smallest bulk ESS over the parameters and transformed
# parameters (lp__ excluded); CHAIN_CPU_S: the chains' own CPU time
# (get_elapsed_time, warmup + sampling, Stan's clock()); LEAPFROGS: leapfrog
# steps of all chains, warmup included; CALL_CPU_S: user + system CPU of the
# whole sampling() call (rstan's set-up and output handling included).  The
# C++ compilation is not counted; compiled models are cached under
# $PPL_BENCH_CACHE (default /tmp/ppl-bench-stan) by the hash of their file.
#
# With PPL_BENCH_CACHED_ONLY=1 in the environment, programs not compiled
# yet are skipped (no line): a run that must finish soon.
#
#   Rscript bench/stan/stan_peer.R SEED CHAINS WARMUP DRAWS NAME=FILE.stan:DATA.json ...
suppressMessages({library(rstan); library(jsonlite); library(tools)})
if (!dir.exists(system.file("include", package = "BH")) && dir.exists("/usr/include/boost"))
  rstan_options(boost_lib = "/usr/include")
args <- commandArgs(trailingOnly = TRUE)
seed <- as.integer(args[1]); chains <- as.integer(args[2])
warmup <- as.integer(args[3]); draws <- as.integer(args[4])
cache <- Sys.getenv("PPL_BENCH_CACHE", "/tmp/ppl-bench-stan")
dir.create(cache, showWarnings = FALSE, recursive = TRUE)
for (spec in args[-(1:4)]) {
  name <- sub("=.*", "", spec)
  files <- strsplit(sub("^[^=]*=", "", spec), ":", fixed = TRUE)[[1]]
  code <- paste(readLines(files[1]), collapse = "\n")
  rds <- file.path(cache, paste0(md5sum(files[1]), ".rds"))
  if (!file.exists(rds) && Sys.getenv("PPL_BENCH_CACHED_ONLY") == "1") next
  sm <- if (file.exists(rds)) readRDS(rds) else {
    m <- stan_model(model_code = code, model_name = name); saveRDS(m, rds); m }
  d <- fromJSON(files[2])
  t0 <- proc.time()
  capture.output(fit <- suppressMessages(suppressWarnings(
    sampling(sm, data = d, chains = chains, iter = warmup + draws, warmup = warmup, seed = seed,
             cores = 1, refresh = 0))))
  t1 <- proc.time()
  a <- as.array(fit)
  pars <- setdiff(dimnames(a)[[3]], "lp__")
  ess <- min(sapply(pars, function(v) ess_bulk(a[, , v])))
  sp <- get_sampler_params(fit, inc_warmup = TRUE)
  leap <- sum(sapply(sp, function(s) sum(s[, "n_leapfrog__"])))
  call <- sum((t1 - t0)[c("user.self", "sys.self")])
  cat(sprintf("stan %s %.1f %.4f %.0f %.4f\n", name, ess, sum(get_elapsed_time(fit)), leap, call))
}
