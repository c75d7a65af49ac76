# csv_readers.R — the CmdStan CSV of `ppl run`, read by the R tools users
# reach for: rstan::read_stan_csv (what bayesplot and loo take) and the
# posterior package.  Checks that they find the draws, the sampler columns,
# the adaptation block and the element names in CmdStan's order, and that
# posterior's diagnostics (computed by R, independently) agree with ppl's
# summary.  TAP on stdout.
#
#   Rscript csv_readers.R PPL MODEL.ppl TMPDIR
suppressPackageStartupMessages({
  library(rstan)
  library(posterior)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
ppl <- args[1]
model <- args[2]
tmp <- args[3]

n <- 0
failed <- 0
ok <- function(cond, what) {
  n <<- n + 1
  cond <- isTRUE(cond)
  if (!cond) failed <<- failed + 1
  cat(if (cond) "ok" else "not ok", n, "-", what, "\n")
  invisible(cond)
}
note <- function(...) cat("#", ..., "\n")

chains <- 2
warmup <- 150
draws <- 100
thin <- 2
out <- file.path(tmp, "out.csv")
sum_json <- file.path(tmp, "summary.json")
status <- system2(ppl, c("run", model, "--chains", chains, "--warmup", warmup, "--draws", draws,
                         "--thin", thin, "--seed", 7, "--quiet", "--output", out,
                         "--summary", sum_json),
                  stdout = FALSE, stderr = FALSE)
ok(status == 0, "ppl run writes the CSV files")
files <- file.path(tmp, sprintf("out_%d.csv", seq_len(chains)))

# ---- rstan ----
fit <- tryCatch(read_stan_csv(files), error = function(e) {
  note("read_stan_csv:", conditionMessage(e))
  NULL
})
ok(!is.null(fit), "rstan::read_stan_csv reads the files")
if (is.null(fit)) {
  cat(sprintf("1..%d\n", n))
  quit(status = 1)
}
arr <- as.array(fit)
ok(identical(dim(arr)[1:2], c(as.integer(draws), as.integer(chains))),
   sprintf("%d draws of %d chains (num_samples, num_warmup and thin understood)", draws, chains))
ok(fit@sim$warmup == warmup && fit@sim$thin == thin,
   sprintf("warmup %d and thin %d as written", warmup, thin))

dims <- fit@sim$dims_oi
ok(identical(as.integer(dims$z), 3L) && identical(as.integer(dims$m), c(2L, 3L)) &&
     identical(as.integer(dims$av), c(3L, 2L)) && identical(as.integer(dims$a3), c(2L, 3L, 2L)),
   "dimensions of z[3], m[2,3], av[3][2], a3[2,3,2] from the dotted column names")

ex <- extract(fit, permuted = FALSE)
val_ok <- function(name, idx, want) all(ex[, , sprintf("%s[%s]", name, paste(idx, collapse = ","))] == want)
m_ok <- all(sapply(1:2, function(i) sapply(1:3, function(j) val_ok("m", c(i, j), 10 * i + j))))
av_ok <- all(sapply(1:3, function(i) sapply(1:2, function(k) val_ok("av", c(i, k), 10 * i + k))))
a3_ok <- all(sapply(1:2, function(i) sapply(1:3, function(j) sapply(1:2, function(k)
  val_ok("a3", c(i, j, k), 100 * i + 10 * j + k)))))
ok(m_ok, "matrix m: every element where rstan expects it (column-major columns)")
ok(av_ok, "array of vectors av: every element where rstan expects it")
ok(a3_ok, "3-d array a3: every element where rstan expects it")

raw <- read.csv(files[1], comment.char = "#")
ok(isTRUE(all.equal(unname(arr[, 1, "mu"]), raw$mu, tolerance = 0)) &&
     isTRUE(all.equal(unname(arr[, 1, "lp__"]), raw$lp__, tolerance = 0)),
   "draws of mu and lp__ are the CSV's numbers")

sp <- get_sampler_params(fit, inc_warmup = FALSE)
want_cols <- c("accept_stat__", "stepsize__", "treedepth__", "n_leapfrog__", "divergent__",
               "energy__")
ok(length(sp) == chains && setequal(colnames(sp[[1]]), want_cols) && nrow(sp[[1]]) == draws,
   "sampler columns as CmdStan names them")

info <- get_adaptation_info(fit)
adapt_ok <- TRUE
for (c in seq_len(chains)) {
  a <- info[[c]]
  step <- as.numeric(sub(".*Step size = ([^\n]+)\n.*", "\\1", a))
  metric <- strsplit(sub(".*inverse mass matrix:\n# ([^\n]+).*", "\\1", a), ", ")[[1]]
  adapt_ok <- adapt_ok && grepl("Diagonal elements of inverse mass matrix:", a, fixed = TRUE) &&
    isTRUE(all(sp[[c]][, "stepsize__"] == step)) && length(metric) == 5 &&
    all(as.numeric(metric) > 0)
}
ok(adapt_ok, "adaptation block: the step size of every draw and 5 inverse-metric entries")

# ---- posterior ----
d <- as_draws_array(arr)
ok(ndraws(d) == chains * draws && nchains(d) == chains &&
     all(c("m[2,3]", "av[3,1]", "a3[2,1,2]", "z[3]") %in% variables(d)),
   "posterior: draws, chains and variable names")

summ <- fromJSON(sum_json)$variables
s <- summarise_draws(subset_draws(d, variable = c("mu", "s", "z[1]", "z[2]", "z[3]", "y")),
                     "mean", "sd", "rhat", "ess_bulk", "ess_tail")
# The CSV holds 6 significant digits, ppl's summary the full draws: means and
# sds agree to that rounding (relative to the sd).  The ESSs are rank-based:
# they agree to the last bits wherever the rounding cannot have reordered or
# tied draws (the smallest gap between sorted draws well above it).  R-hat is
# the larger of the rank-normalised split R-hat and the same on |x - median|,
# where the two middle draws are equidistant from the median by construction:
# whether they tie depends on the last bit, so R-hat agrees to ~1e-3 (seen
# up to 8e-4 over seeds 1-10; checked to 3e-3).
# (A zero gap between two draws of the same state is a NUTS transition that
# stayed put: a tie in the full draws too.)
state <- do.call(paste, lapply(c("mu", "s", "z[1]", "z[2]", "z[3]"),
                               function(v) as.vector(extract_variable_matrix(d, v))))
safe <- function(x) {
  o <- order(x)
  gap <- diff(x[o])
  repeat_ <- gap == 0 & state[o][-1] == state[o][-length(o)]
  all(gap > 1e-5 * max(abs(x)) | repeat_)
}
worst <- c(mean = 0, sd = 0, rhat = 0, ess_bulk = 0, ess_tail = 0)
compared <- character(0)
for (k in seq_len(nrow(s))) {
  var <- s$variable[k]
  v <- summ[[var]]
  worst["mean"] <- max(worst["mean"], abs(s$mean[k] - v$mean) / v$sd)
  worst["sd"] <- max(worst["sd"], abs(s$sd[k] - v$sd) / v$sd)
  worst["rhat"] <- max(worst["rhat"], abs(s$rhat[k] - v$rhat) / v$rhat)
  if (!safe(as.vector(extract_variable_matrix(d, var)))) next
  compared <- c(compared, var)
  for (f in c("ess_bulk", "ess_tail")) worst[f] <- max(worst[f], abs(s[[f]][k] - v[[f]]) / v[[f]])
}
note("largest relative differences from posterior:", paste(names(worst), signif(worst, 3), collapse = ", "),
     "; ESS compared for", paste(compared, collapse = " "))
ok(worst["mean"] < 1e-5 && worst["sd"] < 1e-5, "posterior's mean and sd equal ppl's summary (to the CSV's 6 digits)")
ok(worst["rhat"] < 3e-3, "posterior's R-hat (rank-normalised, split, folded) equals ppl's to 3e-3")
ok(length(compared) >= 3 && worst["ess_bulk"] < 1e-9 && worst["ess_tail"] < 1e-9,
   sprintf("posterior's bulk and tail ESS equal ppl's (%d variables without ties)", length(compared)))

# ---- advi: its files read as NUTS's are (every row a draw, no mean row) ----
vout <- file.path(tmp, "vi.csv")
vjson <- file.path(tmp, "vi.json")
status <- system2(ppl, c("run", model, "--engine", "advi", "--chains", chains, "--draws", draws,
                         "--seed", 7, "--quiet", "--output", vout, "--summary", vjson),
                  stdout = FALSE, stderr = FALSE)
vfiles <- file.path(tmp, sprintf("vi_%d.csv", seq_len(chains)))
vfit <- if (status == 0) tryCatch(read_stan_csv(vfiles), error = function(e) {
  note("read_stan_csv (advi):", conditionMessage(e))
  NULL
}) else NULL
ok(!is.null(vfit), "rstan::read_stan_csv reads advi's files")
if (!is.null(vfit)) {
  va <- as.array(vfit)
  vs <- fromJSON(vjson)$variables
  vd <- summarise_draws(as_draws_array(va), "mean")
  vraw <- read.csv(vfiles[1], comment.char = "#")
  ok(identical(dim(va)[1:2], c(as.integer(draws), as.integer(chains))) &&
       all(c("log_p__", "log_g__") %in% names(vraw)) &&
       abs(vd$mean[vd$variable == "mu"] - vs[["mu"]]$mean) < 1e-5 * vs[["mu"]]$sd,
     "advi: draws x chains, log_p__ and log_g__, mu's mean as ppl's summary")
}

cat(sprintf("1..%d\n", n))
quit(status = if (failed > 0) 1 else 0)
