# fullrank_seeds.R — ppl's ADVI and rstan's vb() on eight schools over many seeds: the error
# of the means and sds against ppl's NUTS, the iterations and the eta each chose, per seed
# (res_FAMILY.csv) and pooled.  Not a test: for docs/engines.md.
#
#   nice Rscript bench/vi_bench/fullrank_seeds.R build/ppl SEEDS [meanfield|fullrank] [FIRST-1]
suppressMessages({library(rstan); library(jsonlite)})
if (!dir.exists(system.file("include", package = "BH")) && dir.exists("/usr/include/boost"))
  rstan_options(boost_lib = "/usr/include")
args <- commandArgs(trailingOnly = TRUE); off <- if (length(args) > 3) as.integer(args[4]) else 0
ppl <- normalizePath(args[1]); nseeds <- as.integer(args[2])
algo <- if (length(args) > 2) args[3] else "fullrank"
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE))))
root <- normalizePath(file.path(here, "..", ".."))
es_file <- file.path(root, "examples", "eight_schools.data.json"); es_data <- fromJSON(es_file)
model <- file.path(root, "examples", "eight_schools.ppl")
pars <- c("mu", "tau", paste0("eta[", 1:8, "]"))
stan_es <- "
data { int<lower=0> J; real y[J]; real<lower=0> sigma[J]; }
parameters { real mu; real<lower=0> tau; vector[J] eta; }
transformed parameters { vector[J] theta = mu + tau * eta; }
model { mu ~ normal(0, 5); tau ~ cauchy(0, 5); eta ~ normal(0, 1); y ~ normal(theta, sigma); }
"
run <- function(extra, seed) {
  out <- tempfile(fileext = ".json")
  system2(ppl, c("run", model, "--data", es_file, "--quiet", "--seed", seed, "--summary", out, extra), stdout = FALSE, stderr = FALSE)
  s <- fromJSON(out, simplifyVector = FALSE)
  list(mean = sapply(pars, function(v) s$variables[[v]]$mean), sd = sapply(pars, function(v) s$variables[[v]]$sd),
       iter = if (!is.null(s$vi)) s$vi$iterations else NA, eta = if (!is.null(s$vi)) s$vi$chains[[1]]$eta else NA)
}
ref <- run(c("--engine", "nuts", "--chains", "4", "--draws", "10000"), 1)
# compiled once, in vi_bench.R's cache (the same code, the same file)
cache <- Sys.getenv("PPL_BENCH_CACHE", "/tmp/ppl-bench-stan")
dir.create(cache, showWarnings = FALSE, recursive = TRUE)
sf <- tempfile(fileext = ".stan"); writeLines(stan_es, sf)
rds <- file.path(cache, paste0("vi_", tools::md5sum(sf), ".rds"))
sm <- if (file.exists(rds)) readRDS(rds) else { m <- stan_model(model_code = stan_es); saveRDS(m, rds); m }
res <- data.frame()
for (s in off + seq_len(nseeds)) {
  f <- run(c("--engine", "advi", "--vi", algo, "--chains", "1", "--draws", "1000"), s)
  res <- rbind(res, data.frame(who = "ppl", seed = s, iter = f$iter, eta = f$eta,
    merr = sqrt(mean(((f$mean - ref$mean) / ref$sd)^2)), serr = sqrt(mean(log(f$sd / ref$sd)^2))))
  o2 <- capture.output(v <- suppressMessages(suppressWarnings(vb(sm, data = es_data, seed = s, algorithm = algo, output_samples = 1000))), type = "output")
  conv <- grep("CONVERGED", o2, value = TRUE)
  it <- if (length(conv)) as.integer(strsplit(trimws(sub("Chain 1:", "", conv[length(conv)])), " +")[[1]][1]) else NA
  etl <- grep("Found best value", o2, value = TRUE)
  et <- if (length(etl)) as.numeric(sub("\\].*", "", sub(".*eta = ", "", etl[1]))) else NA
  m <- as.matrix(v)[, pars, drop = FALSE]
  res <- rbind(res, data.frame(who = "vb", seed = s, iter = it, eta = et,
    merr = sqrt(mean(((colMeans(m) - ref$mean) / ref$sd)^2)), serr = sqrt(mean(log(apply(m, 2, sd) / ref$sd)^2))))
}
write.csv(res, paste0("res_", algo, off, ".csv"), row.names = FALSE)
for (w in c("ppl", "vb")) { r <- res[res$who == w, ]
  cat(sprintf("%s %s: rms mean err %.3f (se of ms %.3f), rms sd err %.3f, median iter %g, mean iter %.0f, eta table: %s\n", w, algo,
    sqrt(mean(r$merr^2)), sd(r$merr^2)/sqrt(nrow(r)), sqrt(mean(r$serr^2)), median(r$iter, na.rm=TRUE), mean(r$iter, na.rm=TRUE), paste(names(table(r$eta)), table(r$eta), collapse=" "))) }
