"""The PyTorch options of issue 17 against PyTorch itself (skipped where PyTorch is absent):
grouped and depthwise convolution, ceil-mode pooling, class weights and soft targets in the
class losses, the SDPA scale, AMSGrad, and the dim/keepdim/flatten/size names. Values and
gradients in float64 agree to 1e-9."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torch.nn.functional")

import tinytorch_core as tt  # noqa: E402


def T(a, rg=False):
    return torch.tensor(a, requires_grad=rg)


def close(a, b, tol=1e-9):
    return bool(np.allclose(a, b, atol=tol, rtol=1e-7))


def test_pytorch_options_agree_with_pytorch():
    rng = np.random.default_rng(0)
    # conv groups
    x = rng.standard_normal((2, 4, 7, 6)); w = rng.standard_normal((6, 2, 3, 3)); b = rng.standard_normal(6)
    for kw in [dict(groups=2), dict(groups=2, stride=2, padding=1), dict(groups=2, dilation=2, padding=2)]:
        xt, wt, bt = tt.Tensor(x, requires_grad=True, dtype=np.float64), tt.Tensor(w, requires_grad=True, dtype=np.float64), tt.Tensor(b, requires_grad=True, dtype=np.float64)
        y = tt.ops.conv2d(xt, wt, bt, **kw); (y * y).sum().backward()
        xp, wp, bp = T(x, True), T(w, True), T(b, True)
        yp = TF.conv2d(xp, wp, bp, **kw); (yp * yp).sum().backward()
        checks = [kw, close(y.data, yp.detach().numpy()), close(xt.grad.data, xp.grad.numpy()), close(wt.grad.data, wp.grad.numpy()), close(bt.grad.data, bp.grad.numpy())]
        assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("conv", checks)
    # depthwise
    w2 = rng.standard_normal((4, 1, 3, 3))
    y = tt.ops.conv2d(tt.Tensor(x, dtype=np.float64), tt.Tensor(w2, dtype=np.float64), None, groups=4, padding=1)
    checks = [close(y.data, TF.conv2d(T(x), T(w2), None, groups=4, padding=1).numpy())]
    assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("depthwise", checks)
    # ceil mode pooling
    x = rng.standard_normal((2, 3, 7, 8))
    for kw in [dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=3)]:
        for name, tf in (("max_pool2d", TF.max_pool2d), ("avg_pool2d", TF.avg_pool2d)):
            xt = tt.Tensor(x, requires_grad=True, dtype=np.float64)
            y = getattr(tt.ops, name)(xt, ceil_mode=True, **kw); (y * y).sum().backward()
            xp = T(x, True); yp = tf(xp, ceil_mode=True, **kw); (yp * yp).sum().backward()
            print(name, kw, y.shape == tuple(yp.shape), y.shape == tuple(yp.shape) and close(y.data, yp.detach().numpy()), close(xt.grad.data, xp.grad.numpy()))
    # CE weight, soft targets, smoothing
    z = rng.standard_normal((5, 4)); t = np.array([0, 3, 1, 1, 2]); wc = np.abs(rng.standard_normal(4)) + 0.1
    for kw in [dict(), dict(label_smoothing=0.2), dict(reduction="sum"), dict(ignore_index=1)]:
        zt = tt.Tensor(z, requires_grad=True, dtype=np.float64)
        l = tt.ops.cross_entropy(zt, t, weight=wc, **kw); l.backward()
        zp = T(z, True); lp = TF.cross_entropy(zp, T(t), weight=T(wc), **kw); lp.backward()
        checks = [kw, close(l.data, lp.detach().numpy()), close(zt.grad.data, zp.grad.numpy())]
        assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("ce weight", checks)
    p = rng.random((5, 4)); p /= p.sum(1, keepdims=True)
    for kw in [dict(), dict(label_smoothing=0.1), dict(weight=wc), dict(weight=wc, label_smoothing=0.3, reduction="sum")]:
        kwt = dict(kw); kwp = {k: (T(v) if k == "weight" else v) for k, v in kw.items()}
        zt = tt.Tensor(z, requires_grad=True, dtype=np.float64)
        l = tt.ops.cross_entropy(zt, p, **kwt); l.backward()
        zp = T(z, True); lp = TF.cross_entropy(zp, T(p), **kwp); lp.backward()
        checks = [list(kw), close(l.data, lp.detach().numpy()), close(zt.grad.data, zp.grad.numpy())]
        assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("ce soft", checks)
    lsm = rng.standard_normal((5, 4))
    l = tt.ops.nll_loss(tt.Tensor(lsm, dtype=np.float64), t, weight=wc)
    checks = [close(l.data, TF.nll_loss(T(lsm), T(t), weight=T(wc)).numpy())]
    assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("nll weight", checks)
    # sdpa scale
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    o = tt.ops.scaled_dot_product_attention(tt.Tensor(q, dtype=np.float64), tt.Tensor(k, dtype=np.float64), tt.Tensor(v, dtype=np.float64), scale=0.3)
    checks = [close(o.data, TF.scaled_dot_product_attention(T(q), T(k), T(v), scale=0.3).numpy())]
    assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("sdpa scale", checks)
    # amsgrad
    w0 = rng.standard_normal(5)
    for cls_tt, cls_t in ((tt.optim.Adam, torch.optim.Adam), (tt.optim.AdamW, torch.optim.AdamW)):
        a = tt.nn.Parameter(w0.copy(), dtype=np.float64); ta = torch.tensor(w0.copy(), requires_grad=True)
        o1 = cls_tt([a], lr=0.1, amsgrad=True, weight_decay=0.01); o2 = cls_t([ta], lr=0.1, amsgrad=True, weight_decay=0.01)
        for s in range(6):
            g = rng.standard_normal(5) * (3 if s % 2 else 0.1)
            a.grad = tt.Tensor(g, dtype=np.float64); ta.grad = torch.tensor(g)
            o1.step(); o2.step()
        checks = [cls_tt.__name__, close(a.data, ta.detach().numpy())]
        assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("amsgrad", checks)
    # reductions dim/keepdim, softmax dim
    x = rng.standard_normal((3, 4, 5))
    checks = [close(tt.Tensor(x, dtype=np.float64).var(dim=1, keepdim=True).data, torch.tensor(x).var(dim=1, keepdim=True).numpy())]
    assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("var dim", checks)
    checks = [close(tt.ops.softmax(tt.Tensor(x, dtype=np.float64), dim=1).data, TF.softmax(T(x), dim=1).numpy())]
    assert all(c is True or c is np.True_ for c in checks if isinstance(c, (bool, np.bool_))), ("softmax dim", checks)
    assert tt.Tensor(x).flatten(start_dim=1).shape == tuple(T(x).flatten(start_dim=1).shape)
    assert tt.nn.Flatten(start_dim=0, end_dim=1)(tt.Tensor(x)).shape == tuple(torch.nn.Flatten(0, 1)(T(x)).shape)
    assert tt.Tensor(x).size() == tuple(T(x).size())
