  // Binomial log likelihood of cells y of n with logit eta. The vectorised lpmf takes no weights:
  // weighted fits (task weights, CV folds) use the kernel as one vector expression (the binomial
  // coefficients are constants), since a loop of scalar lpmfs cost N autodiff nodes per fold.
  real binomial_logit_weighted(array[] int y, array[] int n, vector eta, vector w, int is_weighted) {
    if (!is_weighted) return binomial_logit_lpmf(y | n, eta);
    return dot_product(w, to_vector(y) .* eta - to_vector(n) .* log1p_exp(eta));
  }
