"""README's quick-start search, timed: one process against ``n_jobs`` side by side.

    python benchmarks/quick_start_time.py            # n_jobs None, then -1
    python benchmarks/quick_start_time.py --n-jobs 2

The search of README.md (the default pipeline, 2 x 2 margins, 3 folds: 13
fits) on the long-tailed digits; each run prints its seconds, the best
margins and the test balanced accuracy, which must agree between runs.
"""

import argparse
import time


def search_time(n_jobs):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
    from sklearn_clmle.datasets import load_long_tailed_digits

    data = load_long_tailed_digits(imbalance_ratio=50, random_state=0)
    pipe = Pipeline([("emb", CLMLEEmbedder(random_state=0)),
                     ("clf", KNearestClusterClassifier(random_state=0))])
    search = GridSearchCV(
        pipe, {"emb__inter_margin": [0.5, 1.0], "emb__intra_margin": [0.1, 0.3]},
        scoring="balanced_accuracy", cv=3, n_jobs=n_jobs)
    start = time.perf_counter()
    search.fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    return seconds, search.best_params_, search.score(data.X_test, data.y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jobs", nargs="+", default=["none", "-1"],
                        help="values of GridSearchCV's n_jobs ('none' for None)")
    args = parser.parse_args()
    for value in args.n_jobs:
        n_jobs = None if value == "none" else int(value)
        seconds, best, score = search_time(n_jobs)
        print(f"n_jobs={n_jobs}: {seconds:.1f} s, best {best}, test balanced accuracy "
              f"{score:.3f}", flush=True)


if __name__ == "__main__":
    main()
