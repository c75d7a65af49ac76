# vi_bench.R — ppl's ADVI beside rstan's vb() (Stan's ADVI) on the same
# machine: eight schools (non-centred) and a logistic regression with N = 5000,
# K = 10 simulated here with a fixed seed.  For each: the wall time of a whole
# `ppl run --engine advi` (process start, JIT compilation and output included)
# and of the vb() call alone (its model compiled beforehand, not timed), and
# the fit alone (ppl: the summary JSON's vi.chains[0].seconds, the eta search
# and the optimisation), and the accuracy of both against ppl's own NUTS: per parameter |mean - NUTS
# mean| / NUTS sd and |log(sd / NUTS sd)|, rms over the parameters and the
# seeds, with its standard error over the seeds, and for each family whether
# ppl's error is below vb()'s, within two standard errors of it, or above
# (with 5 seeds the errors of one method vary by a third from seed to seed:
# more seeds, e.g. 20, tell small differences apart); "ppl advi" rows
# are ppl's default (the averaged iterate, inference/advi.c), "ppl last"
# rows ppl with --last-iterate (Stan's answer, the last iterate).  Wall times (medians over the seeds) and, fairer on a shared
# machine, CPU times: the whole ppl process's and vb()'s (the least over
# the seeds), and ppl's fit as the CPU time of the run less that of the same
# run drawing from its saved q (--save-params / --load-params; the median
# over the seeds: too noisy to mean anything when the fit takes a few ms),
# and where build/bench/advi_fit_bench exists, the fit's CPU time measured in
# one process by its own clock (the same difference of runs, precise to
# well under a millisecond).
# Not a test: the figures go to docs/engines.md.
#
#   Rscript bench/vi_bench/vi_bench.R build/ppl [SEEDS]     (run with nice)
#   Rscript bench/vi_bench/vi_bench.R --compile-only        (compile the Stan models only)
# The two Stan models are compiled once and cached under $PPL_BENCH_CACHE
# (default /tmp/ppl-bench-stan, as bench/stan/stan_peer.R) by the hash of
# their code; compiling is never timed.
suppressMessages({library(rstan); library(jsonlite); library(tools)})
# Debian's r-cran-bh is a virtual package: Boost's headers are the system's
if (!dir.exists(system.file("include", package = "BH")) && dir.exists("/usr/include/boost"))
  rstan_options(boost_lib = "/usr/include")
args <- commandArgs(trailingOnly = TRUE)
compile_only <- length(args) > 0 && args[1] == "--compile-only"
ppl <- if (compile_only) NA else normalizePath(args[1])
nseeds <- if (length(args) > 1) as.integer(args[2]) else 5
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE))))
root <- normalizePath(file.path(here, "..", ".."))
tmp <- tempfile("vi_bench"); dir.create(tmp)

# ---- the problems ----
set.seed(20261207)
N <- 5000; K <- 10
X <- matrix(rnorm(N * K), N, K)
beta <- rnorm(K, 0, 1); alpha <- -0.5
y <- rbinom(N, 1, plogis(alpha + X %*% beta))
logit_data <- list(N = N, K = K, X = X, y = as.integer(y))
write(toJSON(logit_data, digits = NA, matrix = "rowmajor", auto_unbox = TRUE), file.path(tmp, "logit.json"))
es_file <- file.path(root, "examples", "eight_schools.data.json")
es_data <- fromJSON(es_file)

stan_es <- "
data { int<lower=0> J; real y[J]; real<lower=0> sigma[J]; }
parameters { real mu; real<lower=0> tau; vector[J] eta; }
transformed parameters { vector[J] theta = mu + tau * eta; }
model { mu ~ normal(0, 5); tau ~ cauchy(0, 5); eta ~ normal(0, 1); y ~ normal(theta, sigma); }
"
stan_logit <- "
data { int<lower=1> N; int<lower=1> K; matrix[N, K] X; int<lower=0, upper=1> y[N]; }
parameters { real alpha; vector[K] beta; }
model { alpha ~ normal(0, 2.5); beta ~ normal(0, 2.5); y ~ bernoulli_logit(alpha + X * beta); }
"
problems <- list(
  list(name = "eight_schools", model = file.path(root, "examples", "eight_schools.ppl"),
       data = es_file, stan = stan_es, standata = es_data,
       pars = c("mu", "tau", paste0("eta[", 1:8, "]"))),
  list(name = "logistic N=5000 K=10", model = file.path(root, "examples", "logistic_regression.ppl"),
       data = file.path(tmp, "logit.json"), stan = stan_logit, standata = logit_data,
       pars = c("alpha", paste0("beta[", 1:K, "]"))))

cache <- Sys.getenv("PPL_BENCH_CACHE", "/tmp/ppl-bench-stan")
dir.create(cache, showWarnings = FALSE, recursive = TRUE)
cached_model <- function(code) {
  f <- tempfile(fileext = ".stan"); writeLines(code, f)
  rds <- file.path(cache, paste0("vi_", md5sum(f), ".rds"))
  if (file.exists(rds)) return(readRDS(rds))
  m <- stan_model(model_code = code); saveRDS(m, rds); m
}
if (compile_only) {
  for (p in problems) cached_model(p$stan)
  quit(save = "no")
}

cpu_child <- function(t) t[["user.child"]] + t[["sys.child"]]
cpu_self <- function(t) t[["user.self"]] + t[["sys.self"]]

# fit = TRUE: the run saves its q, and a second run draws from the saved q
# without optimising (--load-params, the same draws and output): the CPU
# time of the fit is the difference of the two runs' CPU times.
ppl_run <- function(p, extra, seed, fit = FALSE) {
  out <- file.path(tmp, "s.json")
  q <- file.path(tmp, "q.safetensors")
  run <- function(more) {
    t <- system.time(status <- system2(ppl, c("run", p$model, "--data", p$data, "--quiet",
                                              "--seed", seed, "--summary", out, extra, more),
                                       stdout = FALSE, stderr = FALSE))
    if (status != 0) stop("ppl failed: ", paste(c(extra, more), collapse = " "))
    t
  }
  t <- run(if (fit) c("--save-params", q) else c())
  fit_cpu <- NA
  if (fit) {
    s1 <- readLines(out)
    t2 <- run(c("--load-params", q))
    fit_cpu <- cpu_child(t) - cpu_child(t2)
    writeLines(s1, out)
  }
  s <- fromJSON(out, simplifyVector = FALSE)
  list(time = t[["elapsed"]], cpu = cpu_child(t), fit_cpu = fit_cpu,
       mean = sapply(p$pars, function(v) s$variables[[v]]$mean),
       sd = sapply(p$pars, function(v) s$variables[[v]]$sd),
       iter = if (!is.null(s$vi)) s$vi$iterations else NA,
       fit = if (!is.null(s$vi)) s$vi$chains[[1]]$seconds else NA,
       khat = if (!is.null(s$vi) && !is.null(s$vi$khat)) s$vi$khat else NA)
}

err <- function(fit, ref) c(mean = sqrt(mean(((fit$mean - ref$mean) / ref$sd)^2)),
                            sd = sqrt(mean(log(fit$sd / ref$sd)^2)))

cat(sprintf("%-22s %-18s %9s %9s %9s %9s %9s %11s %9s %7s\n", "problem", "method", "run (s)",
            "fit (s)", "run CPU", "fit CPU", "iter", "mean err", "sd err", "k-hat"))
for (p in problems) {
  ref <- ppl_run(p, c("--engine", "nuts", "--chains", "4", "--draws", "5000"), 1)
  sm <- cached_model(p$stan)
  rows <- list()
  for (method in c("ppl advi meanfield", "ppl advi fullrank", "ppl last meanfield",
                   "ppl last fullrank", "rstan vb meanfield", "rstan vb fullrank")) {
    times <- c(); fits <- c(); cpus <- c(); fcpus <- c(); iters <- c(); khats <- c()
    e2 <- matrix(NA, nseeds, 2) # per seed: the squared rms errors of the means and of the sds
    for (s in seq_len(nseeds)) {
      if (startsWith(method, "ppl")) {
        fam <- sub("ppl (advi|last) ", "", method)
        f <- ppl_run(p, c("--engine", "advi", "--vi", fam, "--chains", "1", "--draws", "1000",
                          if (startsWith(method, "ppl last")) "--last-iterate"), s, fit = TRUE)
        khats <- c(khats, f$khat)
      } else {
        fam <- sub("rstan vb ", "", method)
        t <- system.time(capture.output(v <- suppressMessages(suppressWarnings(
          vb(sm, data = p$standata, seed = s, algorithm = fam, output_samples = 1000,
             refresh = 0)))))
        m <- as.matrix(v)[, p$pars, drop = FALSE]
        f <- list(time = t[["elapsed"]], fit = t[["elapsed"]], cpu = cpu_self(t),
                  fit_cpu = cpu_self(t), mean = colMeans(m), sd = apply(m, 2, sd), iter = NA)
      }
      times <- c(times, f$time); fits <- c(fits, f$fit); iters <- c(iters, f$iter)
      cpus <- c(cpus, f$cpu); fcpus <- c(fcpus, f$fit_cpu)
      e2[s, ] <- err(f, ref)^2
    }
    # rms over parameters and seeds, and its standard error over the seeds
    # (delta method: se(sqrt(m)) = se(m) / (2 sqrt(m)))
    e <- sqrt(colMeans(e2))
    se <- if (nseeds > 1) apply(e2, 2, sd) / sqrt(nseeds) / (2 * e) else c(NA, NA)
    # the fit's CPU time is a difference of two runs' (ppl): its median
    rows[[method]] <- c(time = median(times), fit = median(fits), cpu = min(cpus),
                        fcpu = median(fcpus), mean = e[[1]], sd = e[[2]],
                        mean_se = se[[1]], sd_se = se[[2]])
    cat(sprintf("%-22s %-18s %9.3f %9.4f %9.3f %9.4f %9s %11.3f %9.3f %7s\n", p$name, method,
                median(times), median(fits), min(cpus), median(fcpus),
                if (all(is.na(iters))) "-" else format(median(iters)), e[1], e[2],
                if (length(khats)) sprintf("%.2f", median(khats)) else "-"))
  }
  for (fam in c("meanfield", "fullrank")) {
    a <- rows[[paste("ppl advi", fam)]]; b <- rows[[paste("rstan vb", fam)]]
    cat(sprintf(paste("%-22s %-18s vb() / ppl: %.1fx the whole run, %.1fx the fit (wall);",
                      "CPU: %.1fx the whole run, %.1fx the fit;",
                      "mean err ppl/vb %.2f; sd err ppl/vb %.2f\n"),
                p$name, fam, b[["time"]] / a[["time"]], b[["fit"]] / a[["fit"]],
                b[["cpu"]] / a[["cpu"]], b[["fcpu"]] / a[["fcpu"]],
                a[["mean"]] / b[["mean"]], a[["sd"]] / b[["sd"]]))
    # accuracy: ppl's error against vb()'s, with the seeds' standard errors
    # (ppl's default, then Stan's last iterate)
    for (which in c("advi", "last")) for (what in c("mean", "sd")) {
      a2 <- rows[[paste("ppl", which, fam)]]
      d <- a2[[what]] - b[[what]]; sed <- sqrt(a2[[paste0(what, "_se")]]^2 + b[[paste0(what, "_se")]]^2)
      cat(sprintf("%-22s %-18s %s err: ppl%s %.3f +- %.3f, vb() %.3f +- %.3f: %s\n", p$name, fam,
                  what, if (which == "last") " --last-iterate" else "", a2[[what]],
                  a2[[paste0(what, "_se")]], b[[what]], b[[paste0(what, "_se")]],
                  if (d <= 0) "ppl equal or better" else if (is.na(sed) || d > 2 * sed)
                    "ppl WORSE (by more than 2 SE)" else "ppl within 2 SE of vb() (equal)"))
    }
    # the fit's CPU time in process (bench/advi_fit_bench.c: the same difference of
    # runs, with the process's own clock) against vb()'s median CPU
    afb <- file.path(dirname(ppl), "bench", "advi_fit_bench")
    if (file.exists(afb)) {
      out <- system2(afb, c(p$model, p$data, fam, nseeds), stdout = TRUE)
      fcpu <- as.numeric(sub(".*median fit ([0-9.]+) s.*", "\\1", tail(out, 1)))
      cat(sprintf("%-22s %-18s advi_fit_bench: ppl's fit %.4f s of CPU (median, in process); vb() %.4f: %.1fx\n",
                  p$name, fam, fcpu, b[["fcpu"]], b[["fcpu"]] / fcpu))
    }
  }
}
unlink(tmp, recursive = TRUE)
