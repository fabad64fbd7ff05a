"""The three TSPG networks of the paper (section 2.2). Torch modules only: no I/O, no training loops."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

# BatchNorm: epsilon 1e-3 as TensorFlow's default; momentum 0.1 (TensorFlow's 0.99 = torch 0.01 lets the running
# statistics used at inference lag the training statistics by hundreds of steps; see docs/differences.md).
BN_MOMENTUM = 0.1
BN_EPS = 1e-3


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Within this context torch's CPU operations run on the calling thread alone; the thread count is then put back.

    For work too small to share: every parallel region of torch's CPU operations hands part of the work to the
    other OpenMP threads, and where those sleep between regions (``OMP_WAIT_POLICY=PASSIVE``, the ``tspg``
    command's default) waking them took 200-300 us, against 17-32 us for a whole training BatchNorm of 128 x 512
    on one thread (``docs/method.md``, "Small operations on one thread"). Setting the count costs about 0.2 us.
    torch's thread count is the process's: do not use this from several Python threads at once.

    Examples
    --------
    >>> n = torch.get_num_threads()
    >>> with one_thread():
    ...     inside = torch.get_num_threads()
    >>> inside, torch.get_num_threads() == n
    (1, True)
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    try:
        torch.set_num_threads(1)
        yield
    finally:
        torch.set_num_threads(n)


class _SerialBatchNorm(torch.autograd.Function):
    """A training-mode batch normalisation whose forward and backward passes each run on one thread.

    The same ATen operations as torch's own BatchNorm on the CPU (``native_batch_norm`` and its backward), so the
    numbers are those of ``nn.BatchNorm1d`` run with one thread, bit for bit (tested, also under a bfloat16
    autocast). The running statistics are updated in place by the forward pass, as torch's does.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,  # noqa: ANN001
                running_mean: torch.Tensor, running_var: torch.Tensor, momentum: float,
                eps: float) -> torch.Tensor:
        with one_thread():
            out, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum,
                                                        eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN001
        x, weight, mean, invstd = ctx.saved_tensors
        with one_thread():
            gx, gw, gb = torch.ops.aten.native_batch_norm_backward(grad, x, weight, None, None, mean, invstd, True,
                                                                   ctx.eps, list(ctx.needs_input_grad[:3]))
        return gx, gw, gb, None, None, None, None


class SerialBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training passes on the CPU run on one thread (:func:`one_thread`).

    A training BatchNorm of a mini-batch (128 x 512 at most in G and D) is too small to share between threads:
    on two cores whose idle OpenMP threads sleep, each such layer spent about ten times its own work waking the other
    thread: 14% of a W2 generator step (``docs/method.md``, "Small operations on one thread"). In training
    mode on the CPU the forward and backward passes run on the calling thread alone; the numbers are those of
    ``nn.BatchNorm1d`` run with one thread, whatever the thread count (with two, torch splits the batch statistics'
    sums between the threads, which changes their rounding). In eval mode (element-wise with the running
    statistics: the same numbers on any thread count), on other devices, without running statistics or with
    ``momentum=None``, for input that is not batch x features, and where torch's own checks apply (a batch of one
    row in training, ``eps <= 0``), it is ``nn.BatchNorm1d``. Parameters, buffers and state dict are that class's.
    The training pass is a custom autograd function: forward-mode differentiation and ``torch.func`` transforms
    of it are not supported (tspg uses neither).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (batch x features) as ``nn.BatchNorm1d`` does."""
        if not (self.training and self.track_running_stats and self.momentum is not None and x.device.type == "cpu"
                and x.dim() == 2 and x.shape[0] > 1 and self.eps > 0):
            return super().forward(x)
        self.num_batches_tracked.add_(1)
        return _SerialBatchNorm.apply(x, self.weight, self.bias, self.running_mean, self.running_var, self.momentum,
                                      self.eps)


def _dense_bn(n_in: int, n_out: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), SerialBatchNorm1d(n_out, eps=BN_EPS, momentum=BN_MOMENTUM), act)


class Classifier(nn.Module):
    """The target model f: dense layers (default 1024-512-128) with ReLU, then one logit per class.

    ``forward`` returns logits; softmax gives the class probabilities. The input is first centred by the
    ``center`` buffer (the training part's per-gene mean, set by :func:`tspg.train.fit_classifier`; zeros until
    then). Min-max scaled inputs all sit near 0.5, and without centring that shared offset dominates the first
    layer: measured on a 53-class synthetic atlas (2,000 genes, 40 samples per class), held-out accuracy was 0.06
    without centring and 1.00 with it (logistic regression: 1.00). See ``docs/differences.md``.

    Parameters
    ----------
    n_genes
        Input size.
    n_classes
        Output size.
    hidden
        Hidden layer sizes.
    """

    def __init__(self, n_genes: int, n_classes: int, hidden: tuple[int, ...] = (1024, 512, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = n_genes
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU()]
            n_in = h
        layers.append(nn.Linear(n_in, n_classes))
        self.net = nn.Sequential(*layers)
        self.register_buffer("center", torch.zeros(n_genes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits (batch x classes)."""
        return self.net(x - self.center)


class ResidualBlock(nn.Module):
    """Dense-BN-ReLU-Dense-BN with an identity skip connection."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _dense_bn(width, width, nn.ReLU()),
            nn.Linear(width, width),
            SerialBatchNorm1d(width, eps=BN_EPS, momentum=BN_MOMENTUM),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + body(x)``."""
        return x + self.body(x)


def _hourglass(n_in: int, down: tuple[int, ...], n_residual: int,
               up: tuple[int, ...]) -> tuple[list[nn.Module], int]:
    """G's layers before its output layer (dense + BN + ReLU down, residual blocks, up) and their output size."""
    layers: list[nn.Module] = []
    for h in down:
        layers.append(_dense_bn(n_in, h, nn.ReLU()))
        n_in = h
    layers += [ResidualBlock(n_in) for _ in range(n_residual)]
    for h in up:
        layers.append(_dense_bn(n_in, h, nn.ReLU()))
        n_in = h
    return layers, n_in


class Generator(nn.Module):
    """The perturbation generator G: an hourglass of dense layers with residual blocks and a tanh output.

    Down 512-256-128 (dense + BatchNorm + ReLU), three residual blocks of 128, up 256-512, then a dense layer of
    the input size with tanh, so every perturbation lies in [-1, 1].

    Parameters
    ----------
    n_genes
        Input and output size.
    down, n_residual, up
        Layer sizes (the paper's by default).
    zero_init
        Start the output layer at zero weights and bias, so that the untrained G is the identity map
        (``G(x) = 0``) instead of a random perturbation of every gene; gradients still reach every layer from
        the first step on (the output layer's weights get them at once, the others once those are non-zero).
    prior
        A :class:`TransportPrior`: each sample is first moved by this closed-form transport of its class onto the
        target, and the network learns the perturbation of the moved sample (see :func:`perturb`). None: the
        paper's generator, which learns the whole perturbation.
    """

    def __init__(
        self,
        n_genes: int,
        down: tuple[int, ...] = (512, 256, 128),
        n_residual: int = 3,
        up: tuple[int, ...] = (256, 512),
        zero_init: bool = False,
        prior: TransportPrior | None = None,
    ) -> None:
        super().__init__()
        layers, n_in = _hourglass(n_genes, down, n_residual, up)
        out = nn.Linear(n_in, n_genes)
        if zero_init:
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
        layers += [out, nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.prior = prior

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the learned perturbation G(x) in [-1, 1] (scaled units) of its input."""
        return self.net(x)

    def transport(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` moved by the transport prior (``x`` itself when there is none): the input of the network.

        ``classes``: each row's class, whose map moves it (-1: the nearest centroid's; see
        :meth:`TransportPrior.forward`); by default every row goes to the nearest centroid.
        """
        return x if self.prior is None else x + self.prior(x, classes)


#: A centroid coordinate beyond this marks a class without training samples (``tspg.train._prior.FAR``).
_NO_SAMPLES = 1e12
#: Quantile levels per gene of a :class:`TransportPrior`'s marginal maps (0, 1/16, ..., 1; 33 and 65 gave the same
#: figures on pbmc68k, docs/method.md): classes x levels x genes float32 numbers, 68 MB at 50 classes x 20,000 genes.
MARGINAL_LEVELS = 17
#: Elements of gathered quantiles :func:`quantile_map` holds at a time (16 MB of float32).
_QUANTILE_MAP_CHUNK = 4_000_000
#: On the CPU :func:`quantile_map` gathers each row's quantiles where the values (rows x genes) are fewer than this
#: many per class present, and takes the rows a class at a time otherwise: each class taken costs about 0.4 ms of
#: small operations, each value about 4 times more gathered than grouped (AMD EPYC, 2 threads; docs/method.md).
_GATHER_PER_CLASS = 8_000


def _fitted_class(classes: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Rows whose given class is known and had training samples (the others are assigned by nearest centroid)."""
    return (classes >= 0) & (centroids[classes.clamp(min=0), 0].abs() < _NO_SAMPLES)


class TransportPrior(nn.Module):
    """A closed-form transport of every class onto one target class, in a PCA space (buffers only, no weights).

    A sample ``x`` is projected on the PCA (``z = (x - center) C^T``), assigned to the class whose centroid in that
    space is nearest (or to the class given), and moved by that class's affine map ``dz = z M_c + b_c``, which
    goes back to genes through the components; outside the PCA space it moves by the class's ``outside`` shift:
    ``T(x) = (z M_c + b_c) C + o_c``. :func:`tspg.train.fit_transport_prior` fits it (the Gaussian optimal-transport
    map, or the class-mean shift); the target's own map is zero.

    With ``n_marginal`` genes (zero-inflated genes of the target, ``--prior-marginals``), each of those genes of a
    moved sample then goes through its class's monotone map of the gene's marginal onto the target's
    (:func:`quantile_map`; ``marginal_source``: the class's moved training samples' quantiles, classes x levels x
    genes, ``marginal_target``: the target's, levels x genes, at ``levels`` evenly spaced levels;
    ``marginal_classes``: the classes so mapped). Without them (0, the default) those buffers are None and absent
    from the state dict.

    Parameters
    ----------
    n_genes, n_classes, n_components
        Sizes of the buffers (filled with zeros: the identity transport until fitted or loaded).
    n_marginal, levels
        Number of genes whose marginals are mapped, and quantile levels per gene.
    """

    def __init__(self, n_genes: int, n_classes: int, n_components: int, n_marginal: int = 0,
                 levels: int = MARGINAL_LEVELS) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(n_genes))
        self.register_buffer("components", torch.zeros(n_components, n_genes))
        self.register_buffer("centroids", torch.zeros(n_classes, n_components))
        self.register_buffer("maps", torch.zeros(n_classes, n_components, n_components))
        self.register_buffer("shifts", torch.zeros(n_classes, n_components))
        self.register_buffer("outside", torch.zeros(n_classes, n_genes))
        some = n_marginal > 0
        self.register_buffer("marginal_genes", torch.zeros(n_marginal, dtype=torch.long) if some else None)
        self.register_buffer("marginal_source", torch.zeros(n_classes, levels, n_marginal) if some else None)
        self.register_buffer("marginal_target", torch.zeros(levels, n_marginal) if some else None)
        self.register_buffer("marginal_classes", torch.zeros(n_classes, dtype=torch.bool) if some else None)

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """The class of each row: the nearest centroid in the PCA space."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = (x.float() - self.center) @ self.components.T
            return torch.cdist(z, self.centroids).argmin(1)

    def forward(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """The displacement ``T(x)`` of each row (batch x genes).

        ``classes``: each row's class (a negative entry: assign that row), else every row is assigned to the nearest
        centroid.

        Always computed in float32, also under a bfloat16 autocast (the map is fixed and cheap next to G).
        """
        return self.displace(x, *self.coordinates(x, classes))

    def coordinates(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's move inside the PCA space, ``dz = z M_c + b_c`` (rows x components), and its class ``c``.

        The first half of :meth:`forward` (``classes`` as there), for rows that are moved again and again (a
        training part's): :meth:`displace` finishes the move from them. Computed in float32.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = (x.float() - self.center) @ self.components.T
            c = torch.cdist(z, self.centroids).argmin(1)
            if classes is not None:  # rows without a known class keep the nearest centroid (no host synchronisation)
                c = torch.where(_fitted_class(classes, self.centroids), classes, c)
            return torch.bmm(z.unsqueeze(1), self.maps[c]).squeeze(1) + self.shifts[c], c

    def displace(self, x: torch.Tensor, dz: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The displacement ``T(x)`` of rows ``x`` from their :meth:`coordinates` ``(dz, c)``.

        Back to genes through the components, the class's shift outside the PCA space, then the marginal maps
        (which need ``x``). Computed in float32.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            d = dz @ self.components + self.outside[c]
            if self.marginal_genes is not None:
                genes = self.marginal_genes
                every = len(genes) == x.shape[1]  # every gene (sorted, distinct): no gathering of columns
                xg = x.float() if every else x.float()[:, genes]
                dg = d if every else d[:, genes]
                mapped = quantile_map(xg + dg, c, self.marginal_source, self.marginal_target)
                dg = torch.where(self.marginal_classes[c].unsqueeze(1), mapped - xg, dg)
                if every:
                    return dg
                d[:, genes] = dg
            return d


def quantile_map(v: torch.Tensor, classes: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                 grouped: bool | None = None) -> torch.Tensor:
    """Each value through its class's piecewise-linear map of quantiles ``source[class, :, gene]`` onto ``target``.

    For a row of class ``c`` and gene ``g`` the map passes through the points ``(source[c, l, g], target[l, g])``
    of the quantile levels ``l`` (both nondecreasing in ``l``): the monotone transport of the distribution
    ``source`` describes onto the one ``target`` describes. Values below the first (above the last) source
    quantile go to the first (last) target quantile; where source quantiles tie, a value at the tie goes to the
    target quantile of the first tied level (a class whose moved samples share one value, as a class-mean shift
    moves all of a gene's zeros, keeps them together there). On the CPU the rows are taken a class at a time, unless
    the values are few for the classes present (:data:`_GATHER_PER_CLASS`); elsewhere (no host synchronisation),
    and there, each row's quantiles are gathered, a bounded number of rows at a time. Both give the same numbers.

    Parameters
    ----------
    v
        Values, rows x genes.
    classes
        The class index of each row.
    source
        Quantiles per class, classes x levels x genes.
    target
        Quantiles, levels x genes.
    grouped
        Take the rows a class at a time or gather each row's quantiles; None: the faster of the two on the CPU
        (above), gathered elsewhere.

    Returns
    -------
    The mapped values, as ``v``.
    """
    levels, n_genes = target.shape
    out = torch.empty_like(v)
    classes = classes.long()  # an index, whatever its integer type (uint8 would index as a mask)
    present = torch.unique(classes).tolist() if (v.device.type == "cpu" if grouped is None else grouped) else []
    if grouped is None and present:
        grouped = v.numel() >= _GATHER_PER_CLASS * len(present)
    if grouped:
        for c in present:  # the rows of a class against the class's quantiles
            rows = (classes == c).nonzero().squeeze(1)
            out[rows] = _piecewise(v[rows], source[c], target)
        return out
    step = max(1, _QUANTILE_MAP_CHUNK // max(1, n_genes * levels))  # rows at a time: bounds the gathered quantiles
    for a in range(0, len(v), step):
        out[a:a + step] = _piecewise(v[a:a + step], source[classes[a:a + step]].transpose(0, 1), target)
    return out


def _piecewise(v: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """``v`` (rows x genes) through each gene's piecewise-linear map of points ``(xs[l], ys[l])``.

    ``xs``: levels x genes (one map for every row) or levels x rows x genes, nondecreasing in the levels; ``ys``:
    levels x genes. The level of ``v`` is found as a sum over the segments between consecutive source points of
    the share of each that lies below ``v`` (1 for a tied segment that ``v`` exceeds, 0 otherwise; element-wise
    passes, no search), then mapped onto the target's points at that level.
    """
    levels = xs.shape[0]
    gap = xs.diff(dim=0)
    inv = torch.where(gap > 0, 1.0 / gap.clamp_min(torch.finfo(gap.dtype).tiny), torch.inf)
    u = torch.zeros_like(v)
    part = torch.empty_like(v)
    for lvl in range(levels - 1):  # full segments below v count 1, the one holding v its share
        torch.sub(v, xs[lvl], out=part).mul_(inv[lvl]).clamp_(0.0, 1.0).nan_to_num_(0.0)  # 0 x inf (tie at v): 0
        u += part
    j = u.floor().clamp_(0, levels - 2)
    frac = u - j
    j = j.long().unsqueeze(-1)
    y = ys.T.expand(*v.shape, levels)  # rows x genes x levels, no copy
    y0, y1 = y.gather(-1, j).squeeze(-1), y.gather(-1, j + 1).squeeze(-1)
    return y0 + frac * (y1 - y0)


class Discriminator(nn.Module):
    """The discriminator D: dense 512-256-128, each + BatchNorm + LeakyReLU(0.2), then one linear output.

    The output is a least-squares GAN score (no sigmoid): 1 for real, 0 for perturbed.
    """

    def __init__(self, n_genes: int, hidden: tuple[int, ...] = (512, 256, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = n_genes
        for h in hidden:
            layers.append(_dense_bn(n_in, h, nn.LeakyReLU(0.2)))
            n_in = h
        layers.append(nn.Linear(n_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return one score per sample (batch,)."""
        return self.net(x).squeeze(-1)

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score two batches as ``(self(a), self(b))`` does, each dense layer one product over both batches.

        BatchNorm normalises each batch by its own statistics and updates its running statistics with ``a``'s,
        then ``b``'s, as the two calls do; only the products are shared. Their weight gradient is then one product
        with an inner size of ``len(a) + len(b)`` instead of two (the larger products run faster; ``docs/method.md``,
        "D's two batches through shared products").

        Parameters
        ----------
        a, b
            Two batches of samples (rows), of any sizes.

        Returns
        -------
        The scores of ``a`` and of ``b``, up to rounding those of two calls.
        """
        n = len(a)
        h = torch.cat([a, b])
        for layer in self.net[:-1]:
            lin, bn, act = layer
            h = lin(h)
            h = act(torch.cat([bn(h[:n]), bn(h[n:])]))
        out = self.net[-1](h).squeeze(-1)
        return out[:n], out[n:]


class ConditionalPrior(nn.Module):
    """The transport prior of every target at once, in one PCA space shared by all targets (buffers only).

    Per target ``t`` and class ``c`` the map of :class:`TransportPrior`:
    ``T_t(x) = (z M_tc + b_tc) C + (P mu_t - P mu_c)``, with ``z`` the PCA scores of ``x``, ``c`` its class (the
    nearest centroid, or given) and ``P mu`` the part of a class's mean outside the PCA space (``outside_means``),
    so that a class's training mean lands on the target's, as in :class:`TransportPrior`; with a shrunk prior
    ``mu`` are the classes' shrunk means and ``b_tc`` carries their PCA part, so that it lands on
    ``mu_c + (m_t - m_c)`` (:func:`tspg.train.shrunk_class_means`). :func:`tspg.train.fit_conditional_prior`
    fits it.

    Parameters
    ----------
    n_genes, n_classes, n_components
        Sizes, as :class:`TransportPrior`.
    target_classes
        The class index of each target, in the generator's target order.
    """

    def __init__(self, n_genes: int, n_classes: int, n_components: int, target_classes: list[int]) -> None:
        super().__init__()
        n_targets = len(target_classes)
        self.register_buffer("center", torch.zeros(n_genes))
        self.register_buffer("components", torch.zeros(n_components, n_genes))
        self.register_buffer("centroids", torch.zeros(n_classes, n_components))
        self.register_buffer("outside_means", torch.zeros(n_classes, n_genes))
        self.register_buffer("maps", torch.zeros(n_targets, n_classes, n_components, n_components))
        self.register_buffer("shifts", torch.zeros(n_targets, n_classes, n_components))
        self.register_buffer("target_classes", torch.as_tensor(list(target_classes), dtype=torch.long))

    def forward(self, x: torch.Tensor, targets: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """The displacement of each row of ``x`` towards its target (``targets``: indices into the target order).

        ``classes``: each row's source class (a negative entry: assign that row), else the nearest centroid's.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = (x.float() - self.center) @ self.components.T
            c = torch.cdist(z, self.centroids).argmin(1)
            if classes is not None:  # rows without a known class keep the nearest centroid (no host synchronisation)
                c = torch.where(_fitted_class(classes, self.centroids), classes, c)
            dz = torch.bmm(z.unsqueeze(1), self.maps[targets, c]).squeeze(1) + self.shifts[targets, c]
            return dz @ self.components + self.outside_means[self.target_classes[targets]] - self.outside_means[c]


class ConditionalGenerator(nn.Module):
    """One generator for every target: G(x, t), the hourglass of :class:`Generator` with the target as an input.

    The target enters twice: its one-hot code is appended to the first layer's input, and the output layer adds a
    per-target bias (zero at start) before the tanh, so that a target's common shift need not pass the
    bottleneck. With ``zero_init`` the untrained G is the identity map for every target.

    Parameters
    ----------
    n_genes
        Input and output size.
    n_targets
        Number of targets (their order is the model's).
    zero_init
        As :class:`Generator`.
    prior
        A :class:`ConditionalPrior`, or None.
    """

    def __init__(self, n_genes: int, n_targets: int, down: tuple[int, ...] = (512, 256, 128), n_residual: int = 3,
                 up: tuple[int, ...] = (256, 512), zero_init: bool = False,
                 prior: ConditionalPrior | None = None) -> None:
        super().__init__()
        self.n_targets = n_targets
        layers, n_in = _hourglass(n_genes + n_targets, down, n_residual, up)
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(n_in, n_genes)
        self.target_bias = nn.Parameter(torch.zeros(n_targets, n_genes))
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.prior = prior

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The perturbation G(x, t) in [-1, 1] of each row towards its target (indices into the target order)."""
        code = torch.nn.functional.one_hot(targets, self.n_targets).to(x.dtype)
        return torch.tanh(self.out(self.body(torch.cat([x, code], 1))) + self.target_bias[targets])

    def transport(self, x: torch.Tensor, targets: torch.Tensor, classes: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """``x`` moved towards its targets by the prior (``x`` itself without one).

        ``classes``: each row's source class (-1: the nearest centroid's), as :meth:`ConditionalPrior.forward`.
        """
        return x if self.prior is None else x + self.prior(x, targets, classes)


class TargetView(nn.Module):
    """One target of a :class:`ConditionalGenerator`, with a :class:`Generator`'s interface (for :func:`perturb`).

    The view holds no weights of its own: every target's view shares the conditional generator's.
    """

    def __init__(self, conditional: ConditionalGenerator, index: int) -> None:
        super().__init__()
        self.conditional = conditional
        self.index = index

    @property
    def prior(self) -> ConditionalPrior | None:
        """The conditional generator's prior (all targets)."""
        return self.conditional.prior

    def _targets(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x),), self.index, dtype=torch.long, device=x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """G(x, this target)."""
        return self.conditional(x, self._targets(x))

    def transport(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` moved towards this target by the prior (``classes``: as :meth:`Generator.transport`)."""
        return self.conditional.transport(x, self._targets(x), classes)


def perturb(generator: Generator | TargetView, x: torch.Tensor, displacement: torch.Tensor | None = None,
            classes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(x_adv, g)`` with ``x_adv = clip(x + G(x), 0, 1)``; ``g`` is the network's output.

    Training samples lie in [0, 1] (the scaler is fitted on them), so this is the paper's clip. A held-out value
    already outside [0, 1] bounds its own side instead (``clip(x + G(x), min(x, 0), max(x, 1))``), so that the
    clip never moves a gene the generator did not move.

    With a transport prior ``T`` (:attr:`Generator.prior`) the sample is first moved to ``x' = x + T(x)`` and
    ``x_adv = clip(x' + g, ...)`` with ``g = G(x')``: the network learns what the closed-form transport misses.
    ``displacement`` replaces ``T(x)`` (training uses cross-fitted displacements,
    :class:`tspg.train.CrossFittedTransport`); otherwise ``classes`` (each row's class, -1 where unknown) chooses
    each row's map of the prior, else the nearest class centroid does.
    """
    moved = generator.transport(x, classes) if displacement is None else x + displacement
    g = generator(moved)
    return torch.clamp(moved + g, torch.clamp(x, max=0.0), torch.clamp(x, min=1.0)), g


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Within this context, modules are initialised from torch's CPU generator seeded with ``seed``.

    The generator's state before the context is restored after it, so the caller's own random stream (and every
    CUDA generator, which is never touched) goes on as if nothing had happened.

    Examples
    --------
    >>> with seeded(0):
    ...     a = Generator(10)
    >>> with seeded(0):
    ...     b = Generator(10)
    >>> bool(torch.equal(a.net[0][0].weight, b.net[0][0].weight))
    True
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield
