"""Portable pickling of fitted torch state: NumPy arrays in, tensors out.

Fitted estimators hold torch modules and tensors, possibly on a GPU. Pickled
as they are, they load only where that device exists, and ``skops.io`` (the
scikit-learn ecosystem's safe format) cannot store them at all. The
estimators therefore pickle their torch state as plain NumPy arrays, strings
and lists, and rebuild the tensors on load, on the saved device when it is
available and on the CPU otherwise.
"""

import torch


def module_to_arrays(module):
    """The module's ``state_dict`` as a dict of NumPy arrays (on the CPU)."""
    return {name: tensor.detach().cpu().numpy() for name, tensor in module.state_dict().items()}


def load_arrays(module, arrays):
    """Load NumPy arrays from :func:`module_to_arrays` into ``module`` in place."""
    module.load_state_dict({name: torch.from_numpy(array.copy())
                            for name, array in arrays.items()})
    return module


def loadable_device(device):
    """``device`` if this machine has it, else the CPU.

    A model fitted on a GPU must load on a CPU-only machine; it then runs on
    the CPU (and reports so in ``device_``).
    """
    device = torch.device(device)
    if device.type == "cuda" and not (
            torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        return torch.device("cpu")
    return device
