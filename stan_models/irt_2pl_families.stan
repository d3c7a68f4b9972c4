/* ---
name: irt_2pl_families
title: Two-parameter item response model whose task difficulties share a family offset
hypothesis: >-
  irt_2pl's contest, P = inv_logit(disc_t * (ability_a - difficulty_t)), with each task's
  difficulty made of its length trend, an offset shared by its task family and its own
  residual: tasks of one family are harder or easier together beyond their length, and how
  sharply a task separates agents (its discrimination) stays its own. Aimed at the
  within-family residual blocks irt_2pl leaves on cyber-horizons, where it is the best model by
  PSIS-LOO. p_curve is the curve for a new task of a new family (difficulty offsets and
  discrimination integrated out).
source: >-
  Birnbaum (1968) 2PL with a hierarchical (testlet-like) difficulty over item families, as in
  explanatory item response models (De Boeck & Wilson 2004); proposed in horizon-zoo issue 27.
keywords: [irt, 2pl, item-response, discrimination, difficulty, families, hierarchical]
adapt_delta: 0.9
parameters:
  ability[agent]: "agent ability on the logit scale, relative to a task of mean log2 length"
  delta: "rise in difficulty per doubling of task length"
  tau_family: "sd of family difficulty offsets (logit scale)"
  sigma_diff: "sd of a task's difficulty around its family's (logit scale)"
  sigma_disc: "sd of log discrimination across tasks"
  z_family_total[family]: >-
    standardised total difficulty offset of a family: its family offset plus the mean of its
    tasks' residuals, whose sd is sqrt(tau_family^2 + sigma_diff^2 / n_f) for n_f tasks
  z_task[task]: "standardised task residual; only its deviation from its family's mean enters"
  z_disc[task]: "standardised log discrimination (non-centred, sums to zero)"
generated:
  r_diff[task]: "task difficulty around the length trend: its family's offset plus its own residual"
  difficulty[task]: "task difficulty (logit scale)"
  discrimination[task]: "task discrimination"
priors:
  ability: "normal(0, 2.5): weakly informative on the logit scale"
  delta: "normal(0.7, 0.7): centred on the Bradley-Terry rate ln(2) per doubling"
  tau_family: "half-normal(0, 1): family offsets of a few logits at most"
  sigma_diff: "half-normal(0, 1): difficulty scatter of a few logits at most"
  sigma_disc: "half-normal(0, 0.5): discriminations mostly within a factor 3 of each other"
  z_family_total: >-
    std_normal(); with z_task ~ std_normal() exactly family offset ~ normal(0, tau_family) and
    task residual ~ normal(0, sigma_diff), sampled as logistic_task_effects samples them (a
    family's offset and its tasks' mean residual enter the likelihood only as their sum)
  z_task: "std_normal(): its within-family deviations are the task residuals / sigma_diff"
  z_disc: >-
    std_normal() on the zero-sum subspace, so the discriminations' geometric mean is 1 (the
    2PL's scale indeterminacy, as in irt_2pl)
--- */
functions {
#include binomial_logit_weighted.stan
  vector cells_eta(int start, int end, array[] int agent, array[] int task, vector x,
                   vector ability, real delta, vector r_diff, real sigma_disc, vector z_disc) {
    array[end - start + 1] int a = agent[start:end];
    array[end - start + 1] int t = task[start:end];
    return exp(sigma_disc * z_disc[t]) .* (ability[a] - delta * x[t] - r_diff[t]);
  }
  // Log likelihood of cells start..end: reduce_sum's partial sum, and the whole sum in one call
  // when grainsize is 0 (both paths share one likelihood).
  real cells_log_lik(array[] int n_success, int start, int end, array[] int n_runs, vector weight,
                     int is_weighted, array[] int agent, array[] int task, vector x, vector ability,
                     real delta, vector r_diff, real sigma_disc, vector z_disc) {
    return binomial_logit_weighted(n_success, n_runs[start:end], cells_eta(start, end, agent, task,
                                   x, ability, delta, r_diff, sigma_disc, z_disc),
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
  vector[A] ability;
  real delta;
  real<lower=0> tau_family;
  real<lower=0> sigma_diff;
  real<lower=0> sigma_disc;
  vector[F] z_family_total;
  vector[T] z_task;
  sum_to_zero_vector[T] z_disc;
}
transformed parameters {
  // each task's difficulty residual: its family's total offset plus its deviation from the
  // family's mean (non-centred throughout: the real datasets hold few runs per task)
  vector[T] r_diff;
  {
    vector[F] task_sum = rep_vector(0, F);
    for (t in 1:T) task_sum[family[t]] += z_task[t];
    vector[F] family_total = sqrt(square(tau_family) + square(sigma_diff) * inv(tasks_in_family)) .* z_family_total;
    r_diff = family_total[family] + sigma_diff * (z_task - (task_sum ./ tasks_in_family)[family]);
  }
}
model {
  ability ~ normal(0, 2.5);
  delta ~ normal(0.7, 0.7);
  tau_family ~ normal(0, 1);
  sigma_diff ~ normal(0, 1);
  sigma_disc ~ normal(0, 0.5);
  z_family_total ~ std_normal();
  z_task ~ std_normal();
  z_disc ~ std_normal();
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, x, ability, delta, r_diff, sigma_disc, z_disc);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, x, ability,
                            delta, r_diff, sigma_disc, z_disc);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  vector[T] difficulty = delta * x + r_diff;
  vector[T] discrimination = exp(sigma_disc * z_disc);
  {
    vector[N] eta = cells_eta(1, N, agent, task, x, ability, delta, r_diff, sigma_disc, z_disc);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  real new_sd = sqrt(square(tau_family) + square(sigma_diff));
  for (a in 1:A) {
    for (g in 1:G) {
      // two-dimensional quadrature over a new task's difficulty residual (family offset and own
      // residual, sd sqrt(tau_family^2 + sigma_diff^2)) and its discrimination
      real p = 0;
      for (j in 1:15) {
        p += gh_w[j] * dot_product(gh_w, inv_logit(exp(sigma_disc * gh_x[j])
                                                  * (ability[a] - delta * x_grid[g] - new_sd * gh_x)));
      }
      p_curve[a, g] = p;
    }
  }
}
