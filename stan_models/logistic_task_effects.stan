/* ---
name: logistic_task_effects
title: METR logistic plus hierarchical task difficulty nested in task families
hypothesis: >-
  Beyond its length, each task has its own difficulty, and tasks of one family share part of
  it (task ~ family ~ global). These offsets explain the task-to-task correlation of successes
  that per-agent curves leave behind. p_curve is the curve for a new task of a new family
  (offsets integrated out); p_curve_typical sets the offsets to 0, and the two give very
  different 80% horizons.
source: >-
  METR's per-agent logistic (Kwa et al. 2025, arXiv:2503.14499) with crossed item effects as
  in explanatory item response models (De Boeck & Wilson 2004).
keywords: [logistic, task-effects, hierarchical, families]
parameters:
  alpha[agent]: >-
    log-odds of success at the suite's mean log2 length on a task whose offset is the mean of
    the F family totals (the agent intercept for a typical task, offset 0, plus that mean)
  beta[agent]: "change in log-odds per doubling of task length"
  tau_family: "sd of family difficulty offsets (logit scale)"
  tau_task: "sd of task offsets within a family (logit scale)"
  z_family_total[family]: >-
    standardised total offset of a family: its family offset plus the mean of its tasks'
    offsets, whose sd is sqrt(tau_family^2 + tau_task^2 / n_f) for a family of n_f tasks
  z_task[task]: >-
    standardised task offset; only its deviation from its family's mean enters the likelihood
    (the mean is part of the family total)
generated:
  task_effect[task]: "task's difficulty offset on the logit scale (family + task)"
  family_total[family]: "family's offset plus the mean of its tasks' offsets (logit scale)"
priors:
  alpha: >-
    through alpha - mean(family_total) ~ normal(0, 2.5), the agent intercept for a typical task
    (offset 0): weakly informative on the logit scale. Why alpha carries the families' mean:
    raising every agent and lowering every family by the same amount leaves the likelihood
    unchanged, and sampled as the typical-task intercept that direction tied all A intercepts to
    the mean of the F family totals. The map from (intercept, z) to (alpha, z) is a shift with
    unit Jacobian, so the model is unchanged; the likelihood sees the intercept plus the mean,
    which the runs pin down, and the mean only in this prior
  beta: "normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling"
  tau_family: "half-normal(0, 1): family offsets of a few logits at most"
  tau_task: "half-normal(0, 1): task offsets of a few logits at most"
  z_family_total: >-
    std_normal(). With z_task ~ std_normal() this is exactly the model family offset ~
    normal(0, tau_family), task offset ~ normal(0, tau_task): a family's offset and the mean of
    its tasks' offsets enter the likelihood only as their sum, so they are sampled as that sum
    (whose sd never falls below tau_task / sqrt(n_f)). Sampled separately, the family offset
    traded against its ~19 tasks' mean on cyber-horizons and tau_family had a funnel (4
    divergences, all at tau_family 0.5 to 0.7)
  z_task: "std_normal(): its within-family deviations are the task offsets / tau_task"
--- */
functions {
#include binomial_logit_weighted.stan
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
#include data.stan
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
#include gauss_hermite.stan
}
parameters {
  vector[A] alpha;
  vector[A] beta;
  real<lower=0> tau_family;
  real<lower=0> tau_task;
  vector[F] z_family_total;
  vector[T] z_task;
}
transformed parameters {
  // offset of each task: its family's total plus its deviation from the family's mean
  vector[F] family_total = sqrt(square(tau_family) + square(tau_task) * inv(tasks_in_family)) .* z_family_total;
  vector[T] task_effect;
  {
    vector[F] task_sum = rep_vector(0, F);
    for (t in 1:T) task_sum[family[t]] += z_task[t];
    task_effect = family_total[family] + tau_task * (z_task - (task_sum ./ tasks_in_family)[family]);
  }
}
model {
  // alpha carries the families' mean offset (see the prior), so the likelihood sees task
  // offsets relative to it
  vector[T] task_effect_centred = task_effect - mean(family_total);
  alpha - mean(family_total) ~ normal(0, 2.5);
  beta ~ normal(-0.7, 0.7);
  tau_family ~ normal(0, 1);
  tau_task ~ normal(0, 1);
  z_family_total ~ std_normal();
  z_task ~ std_normal();
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, x, alpha, beta, task_effect_centred);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, x, alpha,
                            beta, task_effect_centred);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  matrix[A, G] p_curve_typical;
  {
    vector[N] eta = cells_eta(1, N, agent, task, x, alpha, beta, task_effect - mean(family_total));
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  {
    real s = sqrt(square(tau_family) + square(tau_task));
    for (a in 1:A) {
      for (g in 1:G) {
        real m = alpha[a] - mean(family_total) + beta[a] * x_grid[g];
        p_curve[a, g] = dot_product(gh_w, inv_logit(m + s * gh_x));
        p_curve_typical[a, g] = inv_logit(m);
      }
    }
  }
}
