"""Compressed sparse rows held as torch tensors, densified a batch at a time.

A one-hot encoded table of 1e5 rows and 1e4 columns is 4 GB dense and a few
MB as CSR. The network's first layer needs dense rows, but only a batch of
them at a time: :class:`SparseRows` keeps the CSR arrays, selects rows with
batched tensor operations (no loop over rows) and densifies only what a
training batch or an embedding pass reads, optionally standardised there
(``(x - center) / scale``, which a sparse matrix cannot hold without losing
its zeros). torch's own sparse CSR tensors do not support row indexing
(``index_select`` and slicing are not implemented for them), hence this class.
"""

import torch


class SparseRows:
    """Rows of a CSR matrix: ``crow`` (n + 1 offsets), ``col`` and ``values``.

    ``rows[index]`` (an index tensor or a slice) is the CSR matrix of those
    rows, and :meth:`to_dense` the ``(n, n_columns)`` float tensor, with the
    standardisation applied: ``(x - center) / scale`` per column when
    ``center`` / ``scale`` are given (vectors of ``n_columns``).
    ``len``, ``shape`` and ``ndim`` read as a 2-D tensor's.
    """

    def __init__(self, crow, col, values, n_columns, center=None, scale=None):
        self.crow, self.col, self.values = crow.long(), col.long(), values
        self.n_columns = int(n_columns)
        self.center, self.scale = center, scale

    @classmethod
    def from_csr(cls, indptr, indices, data, n_columns, center=None, scale=None):
        """From the three arrays of a CSR matrix (NumPy or tensors)."""
        as_tensor = torch.as_tensor
        return cls(as_tensor(indptr), as_tensor(indices), as_tensor(data), n_columns,
                   None if center is None else as_tensor(center, dtype=torch.float64),
                   None if scale is None else as_tensor(scale, dtype=torch.float64))

    def __len__(self):
        return len(self.crow) - 1

    @property
    def shape(self):
        return torch.Size((len(self), self.n_columns))

    @property
    def ndim(self):
        return 2

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            rows = torch.arange(len(self))[rows]
        rows = torch.as_tensor(rows, dtype=torch.long)
        starts = self.crow[rows]
        lengths = self.crow[rows + 1] - starts
        crow = torch.zeros(len(rows) + 1, dtype=torch.long)
        torch.cumsum(lengths, 0, out=crow[1:])
        # Position of every stored value of the chosen rows in `col` /
        # `values`: its row's start plus its rank within the row.
        rank = torch.arange(int(crow[-1])) - torch.repeat_interleave(crow[:-1], lengths)
        positions = torch.repeat_interleave(starts, lengths) + rank
        return SparseRows(crow, self.col[positions], self.values[positions], self.n_columns,
                          self.center, self.scale)

    def to_dense(self):
        """The ``(n, n_columns)`` rows, standardised when ``center`` / ``scale`` are set."""
        lengths = self.crow[1:] - self.crow[:-1]
        row_ids = torch.repeat_interleave(torch.arange(len(self)), lengths)
        dense = torch.zeros(len(self), self.n_columns, dtype=self.values.dtype)
        dense.index_put_((row_ids, self.col), self.values, accumulate=True)
        if self.center is None and self.scale is None:
            return dense
        # As scikit-learn's StandardScaler.transform does to float32 rows
        # (mean and scale rounded to float32 first): the same floats as
        # standardising the dense rows.
        if self.center is not None:
            dense -= self.center.to(dense.dtype)
        if self.scale is not None:
            dense /= self.scale.to(dense.dtype)
        return dense

    def split(self, batch_size):
        """Consecutive dense batches of at most ``batch_size`` rows (``torch.split``'s role)."""
        return (self[start:start + batch_size].to_dense()
                for start in range(0, len(self), batch_size))
