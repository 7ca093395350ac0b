#!/usr/bin/env Rscript
# Reference side of the elastic-net comparison: R glmnet's cv.glmnet, called the way PredictDB calls it
# (alpha, type.measure = "mse", keep = TRUE, given fold ids), plus PredictDB's per-fold statistics at
# lambda.min computed with R's own cor / cor.test / pnorm / pchisq.
#
# Usage: Rscript glmnet_fit.R MANIFEST OUTDIR
#   MANIFEST: tab-separated, header "name n p alpha thresh reps prefix"; per row the files
#     <prefix>.x.f64 (n x p doubles, column-major, little-endian), <prefix>.y.f64 (n doubles),
#     <prefix>.fold.i32 (n 32-bit ints, folds 1..k).
#   OUTDIR/<name>.txt: one "key value value ..." line per result; cv.glmnet alone is timed (no I/O).

suppressMessages(library(glmnet))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: glmnet_fit.R MANIFEST OUTDIR")
manifest <- read.delim(args[1], stringsAsFactors = FALSE)
outdir <- args[2]

read_doubles <- function(path, count) {
  con <- file(path, "rb")
  on.exit(close(con))
  readBin(con, "double", n = count, size = 8, endian = "little")
}

read_ints <- function(path, count) {
  con <- file(path, "rb")
  on.exit(close(con))
  readBin(con, "integer", n = count, size = 4, endian = "little")
}

# Per-fold R2 (TSS around the mean of all y), Pearson r, cor.test p and Fisher z, then the summaries.
predictdb_stats <- function(y, pred, foldid) {
  k <- max(foldid)
  grand_mean <- mean(y)
  r2 <- numeric(k); rho <- numeric(k); pval <- numeric(k); z <- numeric(k)
  for (f in seq_len(k)) {
    held <- foldid == f
    obs <- y[held]; fit <- pred[held]; m <- length(obs)
    r2[f] <- 1 - sum((obs - fit)^2) / sum((obs - grand_mean)^2)
    varies <- sd(fit) != 0
    rho[f] <- if (varies) cor(obs, fit) else 0
    pval[f] <- if (varies && m > 3) cor.test(obs, fit)$p.value else 1
    z[f] <- atanh(rho[f]) * sqrt(m - 3)
  }
  stouffer <- sum(z) / sqrt(k)
  c(cv_R2_avg = mean(r2), cv_R2_sd = sd(r2), rho_avg = mean(rho), rho_se = sd(rho),
    rho_zscore = stouffer, zscore_pval = 2 * pnorm(abs(stouffer), lower.tail = FALSE),
    cv_fisher_pval = pchisq(-2 * sum(log(pval)), 2 * k, lower.tail = FALSE))
}

emit <- function(con, key, values) {
  writeLines(paste(c(key, format(values, digits = 17, scientific = TRUE, trim = TRUE)), collapse = " "), con)
}

for (row in seq_len(nrow(manifest))) {
  job <- manifest[row, ]
  n <- job$n; p <- job$p
  x <- matrix(read_doubles(paste0(job$prefix, ".x.f64"), n * p), nrow = n, ncol = p)
  y <- read_doubles(paste0(job$prefix, ".y.f64"), n)
  foldid <- read_ints(paste0(job$prefix, ".fold.i32"), n)

  elapsed <- numeric(job$reps)
  for (rep in seq_len(job$reps)) {
    started <- proc.time()[["elapsed"]]
    cv <- cv.glmnet(x, y, alpha = job$alpha, foldid = foldid, type.measure = "mse", keep = TRUE,
                    thresh = job$thresh)
    elapsed[rep] <- proc.time()[["elapsed"]] - started
  }

  best <- which(cv$lambda == cv$lambda.min)
  full <- cv$glmnet.fit
  beta_min <- as.numeric(full$beta[, best])
  a0_min <- as.numeric(full$a0[best])
  preval <- cv$fit.preval[, best]
  in_sample <- as.numeric(a0_min + x %*% beta_min)

  con <- file(file.path(outdir, paste0(job$name, ".txt")), "w")
  emit(con, "elapsed", elapsed)
  emit(con, "lambda", cv$lambda)
  emit(con, "cvm", cv$cvm)
  emit(con, "nzero", cv$nzero)
  emit(con, "dev_ratio", full$dev.ratio)
  emit(con, "index_min", best)
  emit(con, "lambda_min", cv$lambda.min)
  emit(con, "beta_min", beta_min)
  emit(con, "a0_min", a0_min)
  emit(con, "preval_min", preval)
  emit(con, "in_sample_R2", 1 - sum((y - in_sample)^2) / sum((y - mean(y))^2))
  if (sum(beta_min != 0) > 0) {
    s <- predictdb_stats(y, preval, foldid)
    for (key in names(s)) emit(con, key, s[[key]])
  }
  if (p <= 400) emit(con, "beta_path", as.numeric(as.matrix(full$beta)))  # column-major p x nlambda
  close(con)
}
