"""Training schedule options and progress reporting of CLMLEEmbedder."""

import pytest

from sklearn_clmle import CLMLEEmbedder


def test_pretraining_only_ablation(small_long_tailed, fast_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**fast_params, "n_rounds": 0}, n_estimators=1).fit(X, y)
    assert list(emb.estimators_[0].history_[:, "stage"]) == ["pretrain"]


def test_nothing_to_train_is_an_error(small_long_tailed, fast_params):
    X, y = small_long_tailed
    params = {**fast_params, "n_rounds": 0, "pretrain_steps": 0}
    with pytest.raises(ValueError, match="nothing to train"):
        CLMLEEmbedder(**params).fit(X, y)


def test_verbose_shows_a_progress_bar_and_logs_each_epoch(small_long_tailed, fast_params, capsys,
                                                          caplog):
    X, y = small_long_tailed
    with caplog.at_level("INFO", logger="sklearn_clmle"):
        CLMLEEmbedder(**{**fast_params, "verbose": 1}, n_estimators=1).fit(X, y)
    assert "fit" in capsys.readouterr().err  # tqdm writes its bar to stderr
    epochs = [r for r in caplog.records if r.getMessage().startswith("epoch")]
    assert len(epochs) == 1 + fast_params["n_rounds"]


def test_silent_by_default(small_long_tailed, fast_params, capsys):
    X, y = small_long_tailed
    CLMLEEmbedder(**fast_params).fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# --------------------------------------------------------------------------
# Validation monitoring, early stopping and the best epoch

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skorch.callbacks import (  # noqa: E402
    BatchScoring,
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochScoring,
)

from sklearn_clmle import LMLEEmbedder, PairEmbedder, SoftmaxEmbedder  # noqa: E402
from sklearn_clmle._validation import stratified_hold_out  # noqa: E402

#: One network: the tests read its history_ and best_epoch_ (checkpoints are
#: refused for ensembles, test_ensemble.py).
MONITORED = dict(n_rounds=3, steps_per_round=3, pretrain_steps=4, random_state=0, device="cpu",
                 embedding_dim=8, module_params=dict(hidden_units=(32,)), n_estimators=1)


@pytest.fixture(scope="module")
def monitored(small_long_tailed):
    X, y = small_long_tailed
    return CLMLEEmbedder(**MONITORED, validation_fraction=0.25).fit(X, y)


def test_validation_bacc_recorded_every_epoch(monitored):
    scores = monitored.estimators_[0].history_[:, "valid_bacc"]
    assert len(scores) == 1 + MONITORED["n_rounds"]  # the pre-training counts as an epoch
    assert all(0.0 <= s <= 1.0 for s in scores)
    best = monitored.estimators_[0].history_[:, "valid_bacc_best"]
    assert best[0] is True
    # valid_bacc_best marks every new maximum; best_epoch_ is the last of them.
    running = np.maximum.accumulate(scores)
    assert best == [True] + list(np.diff(running) > 0)
    assert monitored.estimators_[0].best_epoch_ == 1 + int(np.argmax(scores))


class SnapshotWeights(Callback):
    """The network's weights at the end of every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states_ = []

    def on_epoch_end(self, net, **kwargs):
        self.states_.append({k: v.clone() for k, v in net.module_.state_dict().items()})


@pytest.mark.parametrize("restore_best", [True, False])
def test_restore_best_returns_the_best_epochs_network(small_long_tailed, restore_best):
    X, y = small_long_tailed
    snapshots = SnapshotWeights()
    emb = CLMLEEmbedder(**MONITORED, validation_fraction=0.25, restore_best=restore_best,
                        callbacks=[snapshots]).fit(X, y)
    kept = emb.estimators_[0].best_epoch_ if restore_best else len(emb.estimators_[0].history_)
    expected = snapshots.states_[kept - 1]
    for name, value in emb.estimators_[0].module_.state_dict().items():
        assert torch.equal(value, expected[name]), name


@pytest.mark.cpu_bits
def test_restore_best_false_keeps_the_last_epoch(small_long_tailed, monitored):
    X, y = small_long_tailed
    last = CLMLEEmbedder(**MONITORED, validation_fraction=0.25, restore_best=False).fit(X, y)
    assert last.estimators_[0].history_[:, "valid_bacc"] == monitored.estimators_[0].history_[:, "valid_bacc"]
    assert last.estimators_[0].best_epoch_ == monitored.estimators_[0].best_epoch_
    if monitored.estimators_[0].best_epoch_ != len(monitored.estimators_[0].history_):
        assert not np.array_equal(last.transform(X), monitored.transform(X))


@pytest.mark.float_path
def test_early_stopping_on_valid_bacc(small_long_tailed):
    X, y = small_long_tailed
    # A relative threshold no balanced accuracy can clear (a hundredfold gain):
    # the second epoch is a miss whatever the float path, and training stops.
    stop = EarlyStopping(monitor="valid_bacc", lower_is_better=False, patience=1,
                         threshold=100.0)
    emb = CLMLEEmbedder(**MONITORED, validation_fraction=0.25, callbacks=[stop]).fit(X, y)
    assert len(emb.estimators_[0].history_) == 2
    assert emb.estimators_[0].best_epoch_ in (1, 2)
    assert np.isfinite(emb.transform(X)).all()


def test_checkpoint_on_valid_bacc_best(small_long_tailed, tmp_path):
    X, y = small_long_tailed
    cp = Checkpoint(monitor="valid_bacc_best", dirname=str(tmp_path))
    CLMLEEmbedder(**MONITORED, validation_fraction=0.25, callbacks=[cp]).fit(X, y)
    assert (tmp_path / "params.pt").exists()


def test_lmle_records_validation_too(small_long_tailed):
    X, y = small_long_tailed
    emb = LMLEEmbedder(**MONITORED, validation_fraction=0.25).fit(X, y)
    assert len(emb.estimators_[0].history_[:, "valid_bacc"]) == 4


def test_validation_split_is_stratified_and_spares_small_classes():
    codes = np.repeat([0, 1, 2, 3], [100, 20, 4, 1])
    train, valid = stratified_hold_out(codes, 0.2, np.random.RandomState(0), "Est")
    assert np.bincount(codes[valid], minlength=4).tolist() == [20, 4, 0, 0]
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(len(codes)))


@pytest.mark.parametrize("estimator, callback, match", [
    (CLMLEEmbedder(), EarlyStopping(), "set validation_fraction .* monitor 'valid_bacc'"),
    (CLMLEEmbedder(), EarlyStopping(monitor="train_loss"), "different scales"),
    (CLMLEEmbedder(validation_fraction=0.2), EarlyStopping(), "monitor 'valid_bacc'"),
    (CLMLEEmbedder(validation_fraction=0.2),
     EarlyStopping(monitor="valid_bacc"), "lower_is_better=False"),
    (CLMLEEmbedder(), EpochScoring("accuracy"), "Set validation_fraction"),
    (LMLEEmbedder(), BatchScoring("accuracy"), "Set validation_fraction"),
    (CLMLEEmbedder(n_estimators=1), Checkpoint(), "monitor='valid_loss_best'"),
    (SoftmaxEmbedder(), EarlyStopping(), "monitor 'train_loss'"),
    (PairEmbedder(), ("scoring", EpochScoring("accuracy")), "cross_val_score"),
], ids=["no_split", "train_loss", "valid_loss", "lower_is_better", "epoch_scoring",
        "batch_scoring", "checkpoint", "softmax_valid_loss", "pair_named_scoring"])
def test_callbacks_that_cannot_work_are_refused(small_long_tailed, estimator, callback, match):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match=match):
        estimator.set_params(callbacks=[callback], device="cpu").fit(X, y)


def test_schedulers_that_monitor_nothing_are_accepted(small_long_tailed, tiny_params):
    from skorch.callbacks import LRScheduler

    X, y = small_long_tailed
    tiny_params = {**tiny_params, "n_estimators": 1}  # one network's history_
    emb = CLMLEEmbedder(**tiny_params, callbacks=[LRScheduler(policy="StepLR", step_size=1)])
    assert len(emb.fit(X, y).estimators_[0].history_) == 2
    plateau = LRScheduler(policy="ReduceLROnPlateau", monitor="train_loss")
    with pytest.raises(ValueError, match="different scales"):
        CLMLEEmbedder(**tiny_params, callbacks=[plateau]).fit(X, y)
    plateau = LRScheduler(policy="ReduceLROnPlateau", monitor="valid_bacc", mode="max")
    emb = CLMLEEmbedder(**tiny_params, validation_fraction=0.25, callbacks=[plateau]).fit(X, y)
    assert len(emb.estimators_[0].history_[:, "valid_bacc"]) == 2


def test_early_stopping_on_train_loss_allowed_for_single_loss_embedders(small_long_tailed):
    X, y = small_long_tailed
    emb = SoftmaxEmbedder(max_epochs=3, device="cpu", random_state=0, embedding_dim=8,
                          module_params=dict(hidden_units=(16,)),
                          callbacks=[EarlyStopping(monitor="train_loss")]).fit(X, y)
    assert len(emb.estimators_[0].history_) == 3


def test_validation_parameters_without_effect_are_refused(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match="restore_best=False has no effect"):
        CLMLEEmbedder(**tiny_params, restore_best=False).fit(X, y)
    with pytest.raises(ValueError, match="holds out no sample"):
        CLMLEEmbedder(**tiny_params, validation_fraction=0.001).fit(X, y)
    Y = np.column_stack([y == y[0], y != y[0]]).astype(int)
    with pytest.raises(ValueError, match="one label per sample"):
        CLMLEEmbedder(**tiny_params, validation_fraction=0.2).fit(X, Y)


# --------------------------------------------------------------------------
# Progress bar


def test_progress_bar_counts_batches_names_stages_and_stays(small_long_tailed, fast_params,
                                                            capsys):
    X, y = small_long_tailed
    CLMLEEmbedder(**{**fast_params, "verbose": 1}).fit(X, y)
    err = capsys.readouterr().err
    total = fast_params["pretrain_steps"] + fast_params["n_rounds"] * fast_params["steps_per_round"]
    assert f"{total}/{total}" in err
    assert "pretrain" in err and f"round 2/{fast_params['n_rounds']}" in err
    assert "loss=" in err
    assert err.rstrip("\r").endswith("\n")  # leave=True: the finished bar stays on its line


def test_verbose_2_writes_a_line_per_epoch(small_long_tailed, fast_params, capsys):
    X, y = small_long_tailed
    CLMLEEmbedder(**{**fast_params, "verbose": 2}, validation_fraction=0.25,
                  n_estimators=1).fit(X, y)
    lines = [line for line in capsys.readouterr().err.splitlines() if "epoch " in line]
    assert len(lines) == 1 + fast_params["n_rounds"]
    assert "(pretrain)" in lines[0] and "valid_bacc" in lines[0]
    assert "(round 1/2)" in lines[1] and "n_clusters" in lines[1]


def test_validation_with_a_torch_dataset(small_long_tailed):
    X, y = small_long_tailed
    dataset = torch.utils.data.TensorDataset(torch.tensor(np.asarray(X), dtype=torch.float32),
                                             torch.tensor(y))
    emb = CLMLEEmbedder(**MONITORED, validation_fraction=0.25).fit(dataset)
    scores = emb.estimators_[0].history_[:, "valid_bacc"]
    assert len(scores) == 4 and all(0.25 < s <= 1.0 for s in scores)  # 4 classes: chance 0.25
    assert emb.estimators_[0].best_epoch_ == 1 + int(np.argmax(scores))
    assert np.isfinite(emb.transform(dataset)).all()


def test_progress_bar_of_a_single_loss_embedder(small_long_tailed, capsys):
    X, y = small_long_tailed  # 240 samples: 2 batches of 128 per epoch
    SoftmaxEmbedder(max_epochs=3, batch_size=128, device="cpu", random_state=0, embedding_dim=8,
                    module_params=dict(hidden_units=(16,)), verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "6/6" in err and "epoch 3/3" in err
