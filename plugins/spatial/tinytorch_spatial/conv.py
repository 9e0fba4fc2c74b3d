"""2-D convolution as one matrix product: im2col, GEMM, and col2im for the input gradient.

im2col copies every window of the (padded) input into one matrix of shape (N*Ho*Wo, kh*kw*C):
a row per output pixel, a column per (kernel offset, channel). The convolution is then one
GEMM for the whole batch, ``columns @ filters.T`` with the weight as an (O, kh*kw*C) matrix.
Its backward is two more products: the weight gradient against the saved columns, and the
columns' gradient, which col2im adds back onto the input pixels each entry was copied from.

Layout: the output comes out of the GEMM channels-last, (N*Ho*Wo, O), and is handed out as an
NCHW view of that buffer (no transpose copy). Pooling and element-wise ops keep that layout, so
the next im2col reads whole runs of contiguous channels, and the output gradient reaches the
backward as a free reshape.

Groups: with ``groups=G`` the channels split into G groups of C/G, and each group of O/G output
channels sees only its own group of input channels (depthwise when G == C). im2col then lays the
groups' columns side by side, (N*Ho*Wo, G * kh*kw*C/G), the weight becomes one (O/G, kh*kw*C/G)
matrix per group, and the GEMM one batched matmul with the group axis as its batch
(``grouped_product``). With G = 1 every step is the plain convolution above.

Three fast paths, each behind one predicate (``_can_...``) and checked against the plain path in
the tests: the bias folded into the GEMM, one-channel columns stored column-major, and a small
stride-1 input gradient as a transposed convolution.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Function, concatenate, squeeze, unsqueeze
from tinytorch_core.checks import dtype_of, positive_int, require_one_float_dtype
from tinytorch_core.flops import OpCall

from .geometry import WindowGeometry, array_shape, check_fits, check_nchw, one_image, pair

__all__ = ["Conv2dFunction", "conv2d", "im2col", "col2im"]


def im2col(x, geo: WindowGeometry, groups: int = 1, ones_column: bool = False):
    """(N, C, H, W) input -> (N*Ho*Wo, kh*kw*C) columns: row (n, y, x) holds the window that
    output pixel (y, x) of image n sees, column (g, i, j, c) channel c of group g at kernel
    offset (i, j) (with one group: column (i, j, c)). With ``ones_column``, each group's block
    ends in one more column of ones (see ``_can_fold_bias``)."""
    n, c, _, _ = geo.input_shape
    (kh, kw), (ho, wo) = geo.kernel, geo.out_hw
    pixels, width = n * ho * wo, kh * kw * (c // groups)  # width: one group's columns
    if _can_store_columns_transposed(geo):
        # fast path: a one-channel input's columns stored column-major, -9 % of a W5 step
        columns = np.empty((groups * (width + ones_column), pixels), x.dtype).T
    else:
        columns = np.empty((pixels, groups * (width + ones_column)), x.dtype)
    blocks = columns.reshape(pixels, groups, width + ones_column)  # (N*Ho*Wo, G, width [+ 1]), a view
    windows = geo.windows(geo.pad(x, 0)).reshape(n, groups, c // groups, ho, wo, kh, kw)  # a view
    # the one copy: window (n, y, x) into row (n, y, x), its pixel (g, c, i, j) into column (g, i, j, c)
    blocks[:, :, :width].reshape(n, ho, wo, groups, kh, kw, c // groups)[...] = (
        windows.transpose(0, 3, 4, 1, 5, 6, 2))
    if ones_column:
        blocks[:, :, width] = 1
    return columns


def by_group(matrix, groups: int):
    """(P, G*K) -> (G, P, K): each group's block of columns, side by side in ``matrix``, as one
    matrix of a stack (a view)."""
    rows, width = matrix.shape  # the width spelled out, not -1: NumPy cannot infer -1 with no rows
    return matrix.reshape(rows, groups, width // groups).transpose(1, 0, 2)


def grouped_product(columns, filters):
    """Every group's columns times its own filters: (P, G*K) and (G, Og, K) -> (P, G*Og).
    One batched matmul over the group axis; with one group, the plain ``columns @ filters.T``."""
    products = by_group(columns, len(filters)) @ filters.transpose(0, 2, 1)  # (G, P, Og)
    groups, rows, per_group = products.shape
    return products.transpose(1, 0, 2).reshape(rows, groups * per_group)  # outputs of group g in block g


def col2im(per_offset, geo: WindowGeometry):
    """The adjoint of ``im2col``: every column entry is added onto the input pixel it was copied
    from (overlapping windows add up); returns (N, C, H, W).

    ``per_offset`` holds im2col's columns grouped by kernel offset, (kh*kw, N*Ho*Wo, C): the
    block of offset t is ``columns[:, t*C : (t+1)*C]``, stored contiguously.
    """
    n, c, _, _ = geo.input_shape
    _, _, hp, wp = geo.padded_shape
    blocks = per_offset.reshape((len(per_offset), n) + geo.out_hw + (c,))  # (kh*kw, N, Ho, Wo, C)
    padded = np.zeros((n, hp, wp, c), per_offset.dtype)  # channels-last, like the blocks
    for t, rows, cols in geo.offsets():  # one strided block per kernel offset, all pixels at once
        padded[:, rows, cols, :] += blocks[t]
    return geo.unpad(padded.transpose(0, 3, 1, 2))


def filter_matrix(weight, groups: int = 1):
    """(O, C/G, kh, kw) weight -> (G, O/G, kh*kw*C/G): per group, one row per output channel,
    columns in im2col's order."""
    o, c, kh, kw = weight.shape
    return weight.transpose(0, 2, 3, 1).reshape(groups, o // groups, kh * kw * c)


def conv2d_flops(call: OpCall) -> int:
    """2 * (C/groups * kh * kw) FLOPs per output element (one multiply-add per weight it
    sees), plus 1 for the bias."""
    out, taps = call.output_size(), call.size(call.inputs[1][1:])
    has_bias = len(call.inputs) > 2 and isinstance(call.inputs[2], tuple)
    return 2 * out * taps + (out if has_bias else 0)


def conv2d_backward_flops(call: OpCall) -> int:
    """A product of the forward's size for the input gradient (col2im's adds included) and one
    for the weight gradient, one sum per output element for the bias."""
    out, taps = call.output_size(), call.size(call.inputs[1][1:])
    needs = call.needs_input_grad
    return 2 * out * taps * (needs[0] + needs[1]) + (out if needs[2] else 0)

class Conv2dFunction(Function):
    """2-D cross-correlation of NCHW ``x`` with (O, C/groups, kh, kw) ``weight``, optional bias (O,)."""

    flops = staticmethod(conv2d_flops)
    backward_flops = staticmethod(conv2d_backward_flops)

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        require_one_float_dtype(ctx, x, weight, bias)
        geo = WindowGeometry.of(x.shape, weight.shape[2:], stride, padding, dilation)
        n, o = x.shape[0], weight.shape[0]
        filters = filter_matrix(weight, groups)  # (G, O/G, kh*kw*C/G)
        folded = _can_fold_bias(bias)
        columns = im2col(x, geo, groups, ones_column=folded)  # (N*Ho*Wo, G * (kh*kw*C/G [+ 1]))
        if folded:  # fast path: the bias as the weight of a column of ones, -6 % of a W5 step
            bias_column = bias.astype(np.result_type(x, weight), copy=False).reshape(groups, o // groups, 1)
            out = grouped_product(columns, np.concatenate([filters, bias_column], axis=2))
        else:
            out = grouped_product(columns, filters)  # (N*Ho*Wo, O)
            if bias is not None:
                out += bias
        needs = ctx.needs_input_grad
        keep_columns = needs[1] or (folded and needs[2])
        ctx.save_for_backward(columns if keep_columns else None, filters if needs[0] else None)
        ctx.geometry, ctx.bias_folded, ctx.groups = geo, folded, groups
        return out.reshape((n,) + geo.out_hw + (o,)).transpose(0, 3, 1, 2)  # NCHW view, channels-last

    @staticmethod
    def backward(ctx, grad):
        columns, filters = ctx.saved_tensors
        geo, groups, needs = ctx.geometry, ctx.groups, ctx.needs_input_grad
        n, o, ho, wo = grad.shape
        grad_rows = grad.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)  # like the forward's out
        grad_x = grad_w = grad_b = None
        if needs[0] and _can_use_transposed_conv(geo):
            # fast path: the input gradient as one more convolution, -6 % of a W4 step
            grad_x = _input_grad_by_transposed_conv(grad_rows, filters, geo)
        elif needs[0]:
            grad_x = col2im(_column_grads_by_offset(grad_rows, filters, geo), geo)
        if needs[1] or (ctx.bias_folded and needs[2]):
            # per group (O/G, N*Ho*Wo) @ (N*Ho*Wo, kh*kw*C/G [+ 1]); with the bias folded in,
            # the ones column's gradient is the bias gradient
            both = by_group(grad_rows, groups).transpose(0, 2, 1) @ by_group(columns, groups)
            if ctx.bias_folded:
                both, grad_b = both[:, :, :-1], both[:, :, -1].reshape(o)
            grad_w = _weight_layout(both, geo, groups)
        if needs[2] and not ctx.bias_folded:
            grad_b = np.einsum("pc->c", grad_rows)  # the sum over pixels p
        return grad_x, grad_w if needs[1] else None, grad_b if needs[2] else None


def _column_grads_by_offset(grad_rows, filters, geo: WindowGeometry):
    """The columns' gradient, ``grad_rows @ filters`` per group, grouped by kernel offset as
    col2im takes it: (kh*kw, N*Ho*Wo, C), one product per group and offset."""
    (kh, kw), c = geo.kernel, geo.input_shape[1]
    groups, per_group, _ = filters.shape
    # (G, kh*kw, O/G, C/G): each group's filters, one (O/G, C/G) block per kernel offset
    offsets = filters.reshape(groups, per_group, kh * kw, c // groups).transpose(0, 2, 1, 3)
    per_offset = by_group(grad_rows, groups)[:, None] @ offsets  # (G, kh*kw, N*Ho*Wo, C/G)
    return per_offset.transpose(1, 2, 0, 3).reshape(kh * kw, len(grad_rows), c)


def _weight_layout(grad_filters, geo: WindowGeometry, groups: int):
    """The inverse of ``filter_matrix``: (G, O/G, kh*kw*C/G) -> (O, C/G, kh, kw)."""
    g, per_group, _ = grad_filters.shape
    (kh, kw), c = geo.kernel, geo.input_shape[1]
    return grad_filters.reshape(g * per_group, kh, kw, c // groups).transpose(0, 3, 1, 2)


def _can_fold_bias(bias) -> bool:
    """Any bias rides in the GEMM: adding it to the narrow (N*Ho*Wo, O) output afterwards, and
    summing its gradient back out, cost more than one more column in the matrix products.
    With groups, each group's block of columns gets its own ones column."""
    return bias is not None


def _can_store_columns_transposed(geo: WindowGeometry) -> bool:
    """One input channel: im2col's rows are then kh*kw-pixel scraps of the image; stored
    column-major, the copy reads whole image rows instead (the GEMMs take either layout).
    One channel means one group, so this path never sees groups > 1."""
    return geo.input_shape[1] == 1


def _can_use_transposed_conv(geo: WindowGeometry) -> bool:
    """Stride 1, no dilation, padding inside the kernel, and small enough that the transposed
    convolution's columns (kh*kw times the input gradient) stay cheap. Any groups: the
    transposed convolution is grouped like the convolution."""
    n, c, h, w = geo.input_shape
    (kh, kw), (ph, pw) = geo.kernel, geo.padding
    small = n * h * w * c * kh * kw <= 1 << 16
    return small and geo.stride == (1, 1) and geo.dilation == (1, 1) and ph < kh and pw < kw


def _input_grad_by_transposed_conv(grad_rows, filters, geo: WindowGeometry):
    """The input gradient of a stride-1 convolution is itself a convolution: the output gradient,
    zero-padded by ``kernel - 1 - padding``, correlated with the kernel flipped in both axes and
    with its in and out channels swapped (within each group). One im2col and one GEMM replace
    col2im's per-offset scatter-adds, which cost more than the arithmetic on small images."""
    n, c, h, w = geo.input_shape
    (kh, kw), (ph, pw), (ho, wo) = geo.kernel, geo.padding, geo.out_hw
    groups, per_group, _ = filters.shape
    grad = grad_rows.reshape(n, ho, wo, groups * per_group).transpose(0, 3, 1, 2)  # NCHW view, channels-last
    full = WindowGeometry.of(grad.shape, (kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw))
    # each group's (O/G, kh, kw, C/G) filters flipped and swapped to (C/G, O/G, kh, kw), stacked
    flipped = filters.reshape(groups, per_group, kh, kw, c // groups)[:, :, ::-1, ::-1, :]
    flipped = flipped.transpose(0, 4, 1, 2, 3).reshape(c, per_group, kh, kw)  # (C, O/G, kh, kw)
    grad_x = grouped_product(im2col(grad, full, groups), filter_matrix(flipped, groups))  # (N*H*W, C)
    return grad_x.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as PyTorch) of NCHW ``x`` with ``weight``
    (O, C/groups, kh, kw).

    ``stride``, ``padding`` (zeros) and ``dilation`` are ints or (h, w) pairs; ``padding`` may also
    be PyTorch's ``"valid"`` (none) or ``"same"`` (stride 1: the output as large as the input). ``groups`` splits
    the C input and O output channels into that many groups, each convolved only with its own
    (``groups == C``: a depthwise convolution). Returns an (N, O, Ho, Wo) tensor.
    """
    return checked_conv2d(x, weight, bias, stride, padding, dilation, "conv2d", groups)


def checked_conv2d(x, weight, bias, stride, padding, dilation, where: str, groups=1):
    """``conv2d`` whose errors name ``where`` (the layer that called it, say)."""
    if one_image(x, where):
        batch = checked_conv2d(unsqueeze(x, 0), weight, bias, stride, padding, dilation, where, groups)
        return squeeze(batch, 0)
    if isinstance(padding, str):
        x, padding = padding_by_name(x, weight, stride, dilation, padding, where)
    stride, padding, dilation = _check_conv2d(x, weight, bias, stride, padding, dilation, groups, where)
    return Conv2dFunction.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                                groups=groups)


def padding_by_name(x, weight, stride, dilation, padding: str, where: str):
    """PyTorch's ``padding="valid"`` (none) and ``padding="same"`` as ``(x, padding pair)``.

    "same" needs stride 1 and pads ``dilation * (k - 1)`` per axis, half before and the rest
    after: an odd total's extra row or column goes after, joined to ``x`` as zeros."""
    check_padding_name(padding, stride, where)
    if padding == "valid":
        return x, (0, 0)
    kernel = array_shape(weight, "weight", where)[2:]
    if len(kernel) != 2:
        return x, (0, 0)  # not a 4-D weight: _check_conv2d says so
    totals = [d * (k - 1) for d, k in zip(pair(dilation, "dilation", where, 1), kernel)]
    for axis, extra in ((2, totals[0] % 2), (3, totals[1] % 2)):
        if extra:
            border = np.zeros(np.shape(x)[:axis] + (1,) + np.shape(x)[axis + 1:], dtype_of(x))
            x = concatenate([x, border], axis=axis)
    return x, (totals[0] // 2, totals[1] // 2)


def check_padding_name(padding: str, stride, where: str) -> None:
    """A padding given by name must be "valid" or "same", and "same" needs stride 1 (as in PyTorch)."""
    if padding not in ("valid", "same"):
        raise ValueError(f"{where}: padding must be an int, a pair of ints, 'valid' or 'same', got {padding!r}")
    if padding == "same" and pair(stride, "stride", where, 1) != (1, 1):
        raise ValueError(f"{where}: padding='same' needs stride 1, got stride={stride!r} "
                         "(a strided output cannot keep the input's size)")


def _check_conv2d(x, weight, bias, stride, padding, dilation, groups, where):
    """The shapes must agree and the kernel fit (the forward checks that the operands are floats
    of one dtype); returns stride, padding, dilation as pairs."""
    xs = check_nchw(x, where)
    ws = array_shape(weight, "weight", where)
    if len(ws) != 4:
        raise ValueError(f"{where}: expected a 4-D weight (out_channels, in_channels, kh, kw), got shape {ws}")
    _check_channels(xs, ws, positive_int(groups, "groups", where), where)
    bs = None if bias is None else array_shape(bias, "bias", where)
    if bs is not None and bs != (ws[0],):
        raise ValueError(f"{where}: bias must have shape ({ws[0]},) for weight {ws}, got {bs}")
    stride = pair(stride, "stride", where, 1)
    padding = pair(padding, "padding", where, 0)
    dilation = pair(dilation, "dilation", where, 1)
    if min(ws[2:]) < 1:
        raise ValueError(f"{where}: the weight {ws} has an empty kernel")
    check_fits(xs, ws[2:], padding, dilation, where)
    return stride, padding, dilation


def _check_channels(xs, ws, groups, where):
    """The weight sees C/groups input channels, and ``groups`` divides its O output channels."""
    if ws[1] * groups != xs[1]:
        if groups == 1:
            expects, layout = f"{ws[1]} input channel(s)", "in_channels"
        else:
            expects, layout = f"{ws[1]} per group, {ws[1] * groups} in all", "in_channels / groups"
        split = f"; groups={groups} does not divide {xs[1]} channels" if xs[1] % groups else ""
        raise ValueError(
            f"{where}: input has {xs[1]} channel(s) (shape {xs}) but the weight {ws}"
            f"{'' if groups == 1 else f' with groups={groups}'} expects {expects} "
            f"(weight shape is (out_channels, {layout}, kh, kw)){split}"
        )
    if ws[0] % groups:
        raise ValueError(f"{where}: groups={groups} must divide the {ws[0]} output channel(s) "
                         f"(weight shape {ws} is (out_channels, in_channels / groups, kh, kw))")
