"""
=====================================================================
Fraud-like table: sparse one-hot input, probabilities, sample weights
=====================================================================

A transactions table with numeric columns (amount, hour, earlier
transactions) and categorical ones (merchant with 400 levels, country,
device), 4 % fraud. A :class:`~sklearn.compose.ColumnTransformer` scales
the numbers and one-hot encodes the categories into a **sparse** matrix,
which :class:`~sklearn_clmle.CLMLEEmbedder` reads as it is (each training
batch is densified on its own, so the table is never dense in memory).

A fraud team acts on probabilities: the table compares the pipeline's
``predict_proba`` on new rows with a logistic regression and a balanced
random forest (log-loss, Brier score, expected calibration error over 15
bins, ROC-AUC), and the figure draws their reliability diagrams. The
classifier's probabilities follow the class frequencies (a temperature and
class biases fitted on its out-of-fold scores), while ``predict`` keeps the
balanced decision: a transaction can be flagged with a probability below
one half.

Last, every row is weighted by its amount at risk, routed through the
pipelines with scikit-learn's metadata routing (``sample_weight``), and the
weighted and unweighted fits are compared by the share of the fraud amount
they catch.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only (the smoke test does; the numbers then mean nothing).
"""

# License: BSD-3-Clause

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import sklearn
import torch
from imblearn.ensemble import BalancedRandomForestClassifier
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (balanced_accuracy_score, brier_score_loss, log_loss,
                             roc_auc_score)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
SCHEDULE = (dict(pretrain_steps=2, n_rounds=1, steps_per_round=2, n_estimators=1)
            if QUICK else {})

# %%
# A transactions table
# --------------------
# Fraud is likelier at risky merchants, for large amounts and at night.

rng = np.random.RandomState(0)
n = 1500 if QUICK else 6000
merchant = rng.zipf(1.4, n) % 400
country = rng.randint(0, 20, n)
device = rng.randint(0, 5, n)
amount = rng.lognormal(3.5, 1.2, n)
hour = rng.randint(0, 24, n)
earlier = rng.poisson(12, n)
risky_merchant = (merchant * 7919) % 23 == 0
logit = (2.5 * risky_merchant + 0.8 * np.log(amount / 30) + 1.2 * ((hour < 5) | (hour > 22))
         - 0.05 * earlier + 0.6 * (country == 3) + rng.normal(0, 0.5, n))
y = (logit > np.quantile(logit, 0.96)).astype(int)
X = np.column_stack([amount, hour, earlier, merchant, country, device]).astype(object)
X_train, X_test, y_train, y_test, amount_train, amount_test = train_test_split(
    X, y, amount, test_size=0.5, stratify=y, random_state=0)


def make_columns():
    return ColumnTransformer([
        # (Weighted standardisation when a sample_weight is routed.)
        ("numbers", StandardScaler().set_fit_request(sample_weight=True), [0, 1, 2]),
        ("categories", OneHotEncoder(handle_unknown="ignore"), [3, 4, 5]),
    ])


# Metadata routing carries ``sample_weight`` to the steps that request it
# (set_fit_request), in fit, cross-validation and grid search alike.
sklearn.set_config(enable_metadata_routing=True)
print("fraud rate:", y.mean(), "| input:",
      type(make_columns().fit_transform(X_train)).__name__)

# %%
# Three models on the same columns
# --------------------------------

def make_models():
    return {
        "CLMLE pipeline": Pipeline([
            ("columns", make_columns()),
            ("emb", CLMLEEmbedder(random_state=0, **SCHEDULE)
             .set_fit_request(sample_weight=True)),
            ("clf", KNearestClusterClassifier(random_state=0)
             .set_fit_request(sample_weight=True)),
        ]),
        "logistic regression": Pipeline([
            ("columns", make_columns()),
            ("clf", LogisticRegression(max_iter=2000).set_fit_request(sample_weight=True))]),
        "balanced random forest": Pipeline([
            ("columns", make_columns()),
            ("clf", BalancedRandomForestClassifier(
                random_state=0, sampling_strategy="all", replacement=True, bootstrap=False)
             .set_fit_request(sample_weight=True))]),
    }


models = make_models()


def calibration_error(y, p, n_bins=15):
    """Mean |fraud rate - mean probability| over equal-width bins, by their share of rows."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return sum((bins == b).mean() * abs(y[bins == b].mean() - p[bins == b].mean())
               for b in np.unique(bins))


fig, ax = plt.subplots(figsize=(5.5, 5))
ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
print(f"{'model':<24} {'fit s':>6} {'bal. acc':>8} {'log-loss':>8} {'Brier':>6} "
      f"{'ECE':>6} {'ROC-AUC':>7}")
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    proba = model.predict_proba(X_test)[:, 1]
    print(f"{name:<24} {seconds:>6.1f} "
          f"{balanced_accuracy_score(y_test, model.predict(X_test)):>8.3f} "
          f"{log_loss(y_test, proba):>8.3f} {brier_score_loss(y_test, proba):>6.3f} "
          f"{calibration_error(y_test, proba):>6.3f} {roc_auc_score(y_test, proba):>7.3f}")
    observed, predicted = calibration_curve(y_test, proba, n_bins=10)
    ax.plot(predicted, observed, marker="o", label=name)

ax.set_xlabel("mean predicted probability of fraud (10 equal-width bins)")
ax.set_ylabel("observed fraud rate")
ax.set_title("Reliability on new transactions")
ax.legend(loc="upper left")
fig.tight_layout()

# %%
# Rows weighted by the amount at risk
# -----------------------------------
# A missed fraud of 2,000 costs a hundred times one of 20. Passing the
# amounts as ``sample_weight`` (routed to every step that requested it)
# makes each model count a row as if it were repeated in proportion to
# its amount: the embedder draws heavy rows more often into its batches and
# its clusters hold equal shares of amount, the classifier weighs its
# centroids, its choice of ``N`` and its calibration. The columns measure
# the new transactions by amount too: the share of the fraud amount
# flagged, the share of the legitimate amount flagged (false alarms), and
# the amount-weighted log-loss.
#
# On this table the weights do not pay, for any of the three models: the
# amounts are heavy-tailed (the largest is 37 times the mean, and the
# effective number of rows, ``(sum w)**2 / sum w**2``, is about a quarter of
# them), so a weighted fit learns from a few heavy rows. Check on held-out
# rows that weighting helps before relying on it.

print(f"\n{'model':<24} {'weights':>8} {'fit s':>6} {'fraud $ caught':>14} "
      f"{'legit $ flagged':>15} {'$ log-loss':>10}")
fraud, legit = y_test == 1, y_test == 0
for name in models:
    for weighted in (False, True):
        model = make_models()[name]
        start = time.perf_counter()
        model.fit(X_train, y_train,
                  **({"sample_weight": amount_train} if weighted else {}))
        seconds = time.perf_counter() - start
        flagged = model.predict(X_test) == 1
        proba = model.predict_proba(X_test)[:, 1]
        caught = amount_test[fraud & flagged].sum() / amount_test[fraud].sum()
        alarms = amount_test[legit & flagged].sum() / amount_test[legit].sum()
        print(f"{name:<24} {'amount' if weighted else 'none':>8} {seconds:>6.1f} "
              f"{caught:>14.3f} {alarms:>15.3f} "
              f"{log_loss(y_test, proba, sample_weight=amount_test):>10.3f}")
sklearn.set_config(enable_metadata_routing=False)
plt.show()
