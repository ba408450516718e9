"""Training schedule options and progress reporting of CLMLEEmbedder."""

import pytest

from sklearn_clmle import CLMLEEmbedder


def test_pretraining_only_ablation(small_long_tailed, fast_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**fast_params, "n_rounds": 0}).fit(X, y)
    assert list(emb.history_[:, "stage"]) == ["pretrain"]


def test_nothing_to_train_is_an_error(small_long_tailed, fast_params):
    X, y = small_long_tailed
    params = {**fast_params, "n_rounds": 0, "pretrain_steps": 0}
    with pytest.raises(ValueError, match="nothing to train"):
        CLMLEEmbedder(**params).fit(X, y)


def test_verbose_shows_a_progress_bar_and_logs_each_epoch(small_long_tailed, fast_params, capsys,
                                                          caplog):
    X, y = small_long_tailed
    with caplog.at_level("INFO", logger="sklearn_clmle"):
        CLMLEEmbedder(**{**fast_params, "verbose": 1}).fit(X, y)
    assert "fit" in capsys.readouterr().err  # tqdm writes its bar to stderr
    epochs = [r for r in caplog.records if r.getMessage().startswith("epoch")]
    assert len(epochs) == 1 + fast_params["n_rounds"]


def test_silent_by_default(small_long_tailed, fast_params, capsys):
    X, y = small_long_tailed
    CLMLEEmbedder(**fast_params).fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
