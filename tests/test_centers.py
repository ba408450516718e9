"""ClassCenterTracker: the two update rules of IR-Softmax's class centers, by hand."""

import pytest
import torch

from sklearn_clmle.nn import ClassCenterTracker, ClassCentreTracker


def _unit(*rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float64), dim=1)


def test_reset_gives_normalised_class_means_and_keeps_absent_classes():
    tracker = ClassCenterTracker(3, 2)
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.6, 0.8]],
                              dtype=torch.float64)
    tracker.reset(embeddings, torch.tensor([0, 0, 1, 1]))
    expected = _unit([0.5, 0.5], [0.3, -0.1], [0.0, 0.0])
    expected[2] = 0.0  # class 2 absent: keeps its (initial zero) center
    torch.testing.assert_close(tracker.centers, expected)
    tracker.reset(torch.tensor([[0.0, 1.0]], dtype=torch.float64), torch.tensor([2]))
    torch.testing.assert_close(tracker.centers[:2], expected[:2])
    torch.testing.assert_close(tracker.centers[2], torch.tensor([0.0, 1.0], dtype=torch.float64))


def test_running_update_is_a_normalised_momentum_step_per_present_class():
    tracker = ClassCenterTracker(2, 2, momentum=0.75)
    tracker.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64),
                  torch.tensor([0, 1]))
    batch = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.6, 0.8]], dtype=torch.float64)
    tracker.update(batch, torch.tensor([0, 0, 0]))
    # Class 0: mean of the batch is (0.2, 0.8/3); 0.75 (1, 0) + 0.25 mean, normalised.
    mean = [0.2, 0.8 / 3]
    moved = [0.75 + 0.25 * mean[0], 0.25 * mean[1]]
    norm = (moved[0] ** 2 + moved[1] ** 2) ** 0.5
    torch.testing.assert_close(tracker.centers[0], torch.tensor([m / norm for m in moved],
                                                                dtype=torch.float64))
    torch.testing.assert_close(tracker.centers[1], torch.tensor([0.0, 1.0],
                                                                dtype=torch.float64))


def test_momentum_zero_replaces_the_center_by_the_batch_mean():
    tracker = ClassCenterTracker(1, 2, momentum=0.0)
    tracker.reset(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    tracker.update(torch.tensor([[0.0, 2.0], [0.0, 4.0]]), torch.tensor([0, 0]))
    torch.testing.assert_close(tracker.centers, torch.tensor([[0.0, 1.0]]))


def test_logits_carry_no_gradient_into_the_centers():
    tracker = ClassCenterTracker(2, 3)
    embeddings = torch.nn.functional.normalize(torch.randn(5, 3, generator=torch.Generator()
                                                           .manual_seed(0)), dim=1)
    embeddings.requires_grad_(True)
    tracker.reset(embeddings, torch.tensor([0, 0, 1, 1, 1]))
    tracker.update(embeddings, torch.tensor([0, 0, 1, 1, 1]))
    assert not tracker.centers.requires_grad
    logits = tracker(embeddings)
    torch.testing.assert_close(logits, embeddings @ tracker.centers.T)
    logits.sum().backward()
    torch.testing.assert_close(embeddings.grad, tracker.centers.sum(0).expand(5, 3))
    assert list(tracker.parameters()) == []


def test_invalid_momentum():
    with pytest.raises(ValueError, match="momentum"):
        ClassCenterTracker(2, 2, momentum=1.0)


def test_the_0_1_name_warns_and_tracks_the_same_centers():
    with pytest.warns(FutureWarning, match="ClassCentreTracker was renamed to "
                                           "ClassCenterTracker in 0.2 and will be removed in 0.4"):
        old = ClassCentreTracker(2, 2, momentum=0.5)
    new = ClassCenterTracker(2, 2, momentum=0.5)
    for tracker in (old, new):
        tracker.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    torch.testing.assert_close(old.centres, new.centers)
