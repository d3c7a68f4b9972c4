/* ---
name: family_slopes
title: Task effects plus family-specific length slopes
hypothesis: >-
  Task length costs more in some task families than in others: every family shifts all agents'
  log-odds slope per doubling by its own offset (e.g. long tasks of one family are long because
  they chain many hard steps, of another because they wait on slow tools). On top of
  logistic_task_effects' task and family difficulty offsets. A family whose slope differs moves
  its tasks' residuals together, more for long and short tasks than for mid-length ones, which
  is a within-family block that difficulty offsets alone cannot produce. p_curve is the curve
  for a new task of a new family (difficulty and slope offsets integrated out).
source: >-
  logistic_task_effects (METR's logistic, Kwa et al. 2025, arXiv:2503.14499, with crossed item
  effects as in De Boeck & Wilson 2004) plus random slopes by family (Gelman & Hill 2007, ch. 13),
  proposed in horizon-zoo issue 27 for the within-family residual structure.
keywords: [logistic, task-effects, hierarchical, families, random-slopes]
parameters:
  alpha[agent]: "log-odds of success on a typical task (offsets 0) of the suite's mean log2 length"
  beta[agent]: "agent's change in log-odds per doubling of task length in a typical family"
  tau_family: "sd of family difficulty offsets (logit scale)"
  tau_task: "sd of task offsets within a family (logit scale)"
  z_family_total[family]: >-
    standardised total offset of a family: its family offset plus the mean of its tasks'
    offsets, whose sd is sqrt(tau_family^2 + tau_task^2 / n_f) for a family of n_f tasks
  z_task[task]: "standardised task offset; only its deviation from its family's mean enters"
  tau_slope: "sd of the families' slope offsets (log-odds per doubling)"
  z_slope[family]: "standardised slope offset of a family (non-centred)"
generated:
  task_effect[task]: "task's difficulty offset on the logit scale (family + task)"
priors:
  alpha: "normal(0, 2.5): weakly informative on the logit scale"
  beta: "normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling"
  tau_family: "half-normal(0, 1): family offsets of a few logits at most"
  tau_task: "half-normal(0, 1): task offsets of a few logits at most"
  z_family_total: >-
    std_normal(); with z_task ~ std_normal() exactly family offset ~ normal(0, tau_family) and
    task offset ~ normal(0, tau_task), sampled as in logistic_task_effects (the sum a family's
    offset and its tasks' mean enter the likelihood as)
  z_task: "std_normal(): its within-family deviations are the task offsets / tau_task"
  tau_slope: >-
    half-normal(0, 0.5): family slope offsets mostly within +-1 log-odds per doubling (0.98 is
    the prior's 95th percentile of tau_slope), against agent slopes near -0.7; 0 (no family
    slopes, logistic_task_effects) is at the prior's mode
  z_slope: "std_normal(): non-centred, as families hold a few tasks each"
--- */
functions {
  // The vectorised lpmf takes no weights: weighted fits (task weights, CV folds) use the kernel.
  real binomial_logit_weighted(array[] int y, array[] int n, vector eta, vector w, int is_weighted) {
    if (!is_weighted) return binomial_logit_lpmf(y | n, eta);
    // the binomial kernel as one vector expression (the coefficients are constants): a loop of
    // scalar lpmfs made every weighted fit, and so every CV fold, pay for N autodiff nodes
    return dot_product(w, to_vector(y) .* eta - to_vector(n) .* log1p_exp(eta));
  }
  vector cells_eta(int start, int end, array[] int agent, array[] int task, vector x, vector alpha,
                   vector beta, vector task_effect) {
    array[end - start + 1] int a = agent[start:end];
    array[end - start + 1] int t = task[start:end];
    return alpha[a] + beta[a] .* x[t] + task_effect[t];
  }
  // Log likelihood of cells start..end: reduce_sum's partial sum, and the whole sum in one call
  // when grainsize is 0 (both paths share one likelihood).
  real cells_log_lik(array[] int n_success, int start, int end, array[] int n_runs, vector weight,
                     int is_weighted, array[] int agent, array[] int task, vector x, vector alpha,
                     vector beta, vector task_effect) {
    return binomial_logit_weighted(n_success, n_runs[start:end], cells_eta(start, end, agent, task,
                                   x, alpha, beta, task_effect),
                                   weight[start:end], is_weighted);
  }
}
data {
  int<lower=1> N;                             // binomial cells (agent x task)
  int<lower=1> A;                             // agents
  int<lower=1> T;                             // tasks
  int<lower=1> F;                             // task families
  array[N] int<lower=1, upper=A> agent;       // agent of each cell
  array[N] int<lower=1, upper=T> task;        // task of each cell
  array[T] int<lower=1, upper=F> family;      // family of each task
  vector[T] log_minutes;                      // natural log of human minutes per task
  array[N] int<lower=1> n_runs;               // runs per cell
  array[N] int<lower=0> n_success;            // successful runs per cell
  vector<lower=0>[N] weight;                  // likelihood weight per cell (1 = unweighted)
  int<lower=1> G;                             // grid points for curves
  vector[G] log_minutes_grid;                 // natural log of minutes on the grid
  int<lower=0> grainsize;                     // cells per reduce_sum slice; 0 = one thread
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
  // Centring at the suite's mean log2 length decorrelates intercepts and slopes.
  real centre = mean(log_minutes) / log(2);
  vector[T] x = log_minutes / log(2) - centre;
  vector[G] x_grid = log_minutes_grid / log(2) - centre;
  vector[F] tasks_in_family = rep_vector(0, F);
  for (t in 1:T) tasks_in_family[family[t]] += 1;
  // 15-point Gauss-Hermite rule for E[f(Z)], Z ~ normal(0, 1): integrates task-level effects
  // out of p_curve (error < 1e-3 for logit sd up to 3).
  vector[15] gh_x = [-6.36394788882984, -5.19009359130478, -4.19620771126902, -3.28908242439877,
                     -2.43243682700976, -1.60671006902873, -0.799129068324548, 0, 0.799129068324548,
                     1.60671006902873, 2.43243682700976, 3.28908242439877, 4.19620771126902,
                     5.19009359130478, 6.36394788882984]';
  vector[15] gh_w = [8.58964989963325e-10, 5.9754195979206e-07, 5.64214640518903e-05,
                     0.00156735750354996, 0.0173657744921376, 0.0894177953998444,
                     0.232462293609732, 0.318259518259518, 0.232462293609732, 0.0894177953998444,
                     0.0173657744921376, 0.00156735750354996, 5.64214640518903e-05,
                     5.9754195979206e-07, 8.58964989963325e-10]';
}
parameters {
  vector[A] alpha;
  vector[A] beta;
  real<lower=0> tau_family;
  real<lower=0> tau_task;
  vector[F] z_family_total;
  vector[T] z_task;
  real<lower=0> tau_slope;
  vector[F] z_slope;
}
transformed parameters {
  // offset of each task: its family's total plus its deviation from the family's mean
  vector[T] task_effect;
  {
    vector[F] task_sum = rep_vector(0, F);
    for (t in 1:T) task_sum[family[t]] += z_task[t];
    vector[F] family_total = sqrt(square(tau_family) + square(tau_task) * inv(tasks_in_family)) .* z_family_total;
    task_effect = family_total[family] + tau_task * (z_task - (task_sum ./ tasks_in_family)[family]);
  }
}
model {
  // A family's slope offset enters as a task effect proportional to the task's length, so it
  // rides on the same cells_eta: x_task = x, plus tau_slope * z_slope[family] * x per task.
  vector[T] slope_effect = tau_slope * z_slope[family] .* x;
  alpha ~ normal(0, 2.5);
  beta ~ normal(-0.7, 0.7);
  tau_family ~ normal(0, 1);
  tau_task ~ normal(0, 1);
  z_family_total ~ std_normal();
  z_task ~ std_normal();
  tau_slope ~ normal(0, 0.5);
  z_slope ~ std_normal();
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, x, alpha, beta, task_effect + slope_effect);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, x, alpha,
                            beta, task_effect + slope_effect);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  matrix[A, G] p_curve_typical;
  {
    vector[N] eta = cells_eta(1, N, agent, task, x, alpha, beta,
                              task_effect + tau_slope * z_slope[family] .* x);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  {
    // For a new task of a new family at x the offsets add up to normal(0, s^2 + tau_slope^2 x^2).
    real s2 = square(tau_family) + square(tau_task);
    for (a in 1:A) {
      for (g in 1:G) {
        real m = alpha[a] + beta[a] * x_grid[g];
        p_curve[a, g] = dot_product(gh_w, inv_logit(m + sqrt(s2 + square(tau_slope * x_grid[g])) * gh_x));
        p_curve_typical[a, g] = inv_logit(m);
      }
    }
  }
}
