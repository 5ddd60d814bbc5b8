"""Extern prims: work served by a vendor library (BLAS, LAPACK, FFT, oneDNN) or by an ATen kernel
that Kiln's loop IR cannot express yet. The generated code calls them directly. `EXTERN` below is
the one list of them, each group with the reason it is extern. Also the ATen `fallback`.
"""
from __future__ import annotations

import torch

from ..builder import is_tensor_like
from ..meta import TensorMeta
from ..prim import Category, PrimMetaError, check, register_prim

aten = torch.ops.aten


def _matmul_meta(a, b):
    check(is_tensor_like(a) and is_tensor_like(b), "matmul", "expected two tensors")
    check(a.ndim == b.ndim and a.ndim in (2, 3), "matmul", f"expected two 2-D or two 3-D tensors, got ranks {a.ndim}, {b.ndim}")
    check(a.dtype == b.dtype, "matmul", f"dtypes must match, got {a.dtype} and {b.dtype}")
    check(a.shape[:-2] == b.shape[:-2] and a.shape[-1] == b.shape[-2], "matmul",
          f"shapes {list(a.shape)} and {list(b.shape)} do not multiply")
    return TensorMeta.contiguous(tuple(a.shape[:-1]) + (b.shape[-1],), a.dtype, a.device)


@register_prim("matmul", Category.EXTERN, _matmul_meta, "(batched) matrix product, a vendor BLAS call")
def matmul(a, b):
    return torch.matmul(a, b)


# reason -> ATen overloads ("packet.overload") made extern prims, one prim per overload, named after it.
EXTERN = {
    "matrix products: BLAS (through ATen)": [
        "dot.default", "vdot.default", "mv.default", "_trilinear.default", "_cdist_forward.default",
        "_pdist_forward.default", "_euclidean_dist.default"],
    "dense linear algebra: LAPACK (through ATen)": [
        "_linalg_svd.default", "linalg_qr.default", "linalg_pinv.atol_rtol_tensor", "_linalg_slogdet.default",
        "_linalg_det.default", "linalg_eig.default", "_linalg_eigh.default", "linalg_lu_factor_ex.default",
        "linalg_lu_solve.default", "linalg_lu.default", "lu_unpack.default", "linalg_cholesky_ex.default",
        "cholesky.default", "cholesky_inverse.default", "cholesky_solve.default", "linalg_inv_ex.default",
        "_linalg_solve_ex.default", "linalg_solve_triangular.default", "triangular_solve.default",
        "linalg_householder_product.default", "linalg_ldl_factor_ex.default", "linalg_ldl_solve.default",
        "geqrf.default", "ormqr.default", "linalg_matrix_exp.default", "linalg_cross.default"],
    "FFT: pocketfft (through ATen)": ["_fft_r2c.default", "_fft_c2c.default", "_fft_c2r.default"],
    "convolution: oneDNN (through ATen)": ["convolution.default", "im2col.default"],
    "windowed pooling and resampling: the loop IR has no window/gather-by-formula form yet": [
        "avg_pool2d.default", "avg_pool3d.default", "_adaptive_avg_pool2d.default", "_adaptive_avg_pool3d.default",
        "max_pool2d_with_indices.default", "max_pool3d_with_indices.default", "adaptive_max_pool2d.default",
        "adaptive_max_pool3d.default", "fractional_max_pool2d.default", "fractional_max_pool3d.default",
        "upsample_nearest1d.default", "_upsample_nearest_exact1d.default", "upsample_linear1d.default",
        "upsample_bilinear2d.default", "_upsample_bilinear2d_aa.default", "upsample_bicubic2d.default",
        "upsample_trilinear3d.default", "grid_sampler_2d.default", "grid_sampler_3d.default",
        "max_pool2d_with_indices_backward.default", "upsample_nearest2d.default", "upsample_nearest3d.default",
        "_upsample_nearest_exact2d.default", "_upsample_nearest_exact3d.default", "reflection_pad2d.default",
        "reflection_pad3d.default", "replication_pad3d.default",
        "reflection_pad1d.default", "replication_pad1d.default", "replication_pad2d.default"],
    "sorting and selection: the loop IR has no sort": [
        "sort.default", "sort.stable", "topk.default", "kthvalue.default", "median.default", "median.dim",
        "nanmedian.default", "nanmedian.dim", "mode.default"],
    "prefix scans: the loop IR has no scan": [
        "cumsum.default", "cumprod.default", "cummax.default", "cummin.default", "logcumsumexp.default"],
    "writes at data-dependent positions: the loop IR stores only at loop indices": [
        "scatter.src", "scatter.value", "scatter.reduce", "scatter.value_reduce", "scatter_add.default",
        "scatter_reduce.two", "index_put.default", "index_add.default", "index_copy.default",
        "index_reduce.default", "masked_scatter.default", "put.default", "_unsafe_masked_index_put_accumulate.default",
        "max_unpool2d.default", "max_unpool3d.default", "diagonal_scatter.default", "as_strided_scatter.default",
        "segment_reduce.default"],
    "searching and counting: binary search and histograms have no loop form yet": [
        "bucketize.Tensor", "searchsorted.Tensor", "searchsorted.Scalar", "histc.default", "histogram.bin_ct", "histogram.bins_tensor",
        "_histogramdd_bin_edges.default", "_histogramdd_from_bin_cts.default", "_histogramdd_from_bin_tensors.default",
        "isin.Tensor_Tensor", "nonzero_static.default", "hash_tensor.default"],
    "sampling without replacement: needs a sort over random keys; uses ATen's generator": ["multinomial.default"],
    "special functions: ATen's series and rational approximations, no portable Kiln version yet": [
        "lgamma.default", "digamma.default", "polygamma.default", "erfinv.default", "i0.default", "igamma.default",
        "igammac.default", "mvlgamma.default", "special_i0e.default", "special_i1.default", "special_i1e.default",
        "special_zeta.default", "special_ndtri.default", "special_log_ndtr.default", "special_erfcx.default",
        "special_airy_ai.default", "special_bessel_j0.default", "special_bessel_j1.default",
        "special_bessel_y0.default", "special_bessel_y1.default", "special_modified_bessel_i0.default",
        "special_modified_bessel_i1.default", "special_modified_bessel_k0.default",
        "special_modified_bessel_k1.default", "special_scaled_modified_bessel_k0.default",
        "special_scaled_modified_bessel_k1.default", "special_spherical_bessel_j0.default",
        "special_chebyshev_polynomial_t.default", "special_chebyshev_polynomial_u.default",
        "special_chebyshev_polynomial_v.default", "special_chebyshev_polynomial_w.default",
        "special_shifted_chebyshev_polynomial_t.default", "special_shifted_chebyshev_polynomial_u.default",
        "special_shifted_chebyshev_polynomial_v.default", "special_shifted_chebyshev_polynomial_w.default",
        "special_hermite_polynomial_h.default", "special_hermite_polynomial_he.default",
        "special_laguerre_polynomial_l.default", "special_legendre_polynomial_p.default", "frexp.Tensor",
        "nextafter.default"],
    "complex numbers: the views between a complex tensor and its (real, imag) pairs, which decomp/complex.py "
    "computes on; angle of a real tensor": [
        "view_as_complex.default", "view_as_real.default", "resolve_conj.default", "angle.default"],
    "fused attention: ATen's flash-attention kernel (a decomposition into matmul/softmax is the next step)": [
        "_scaled_dot_product_flash_attention_for_cpu.default"],
    "loss kernels with data-dependent gathers and per-class weights": [
        "nll_loss_forward.default", "nll_loss2d_forward.default", "multi_margin_loss.default",
        "multilabel_margin_loss_forward.default", "_embedding_bag_forward_only.default"],
}

EXTERN_REASON: dict[str, str] = {}  # prim name -> reason


def _overload(spec: str):
    packet, ov = spec.split(".")
    return getattr(getattr(aten, packet), ov)


def extern_name(op) -> str:
    name = op._schema.name.split("::")[1].lstrip("_")
    return name if op._overloadname == "default" else f"{name}_{op._overloadname}"


def _result_meta(out, device):
    if isinstance(out, torch.Tensor):
        return TensorMeta(tuple(out.shape), out.dtype, tuple(out.stride()), device)
    if isinstance(out, (list, tuple)):
        return tuple(_result_meta(o, device) for o in out)
    raise PrimMetaError(f"extern op returned {type(out).__name__}, not tensors")


def _device_of(args):
    for a in args:
        if is_tensor_like(a):
            return a.device
        if isinstance(a, (list, tuple)):
            d = _device_of(a)
            if d is not None:
                return d
    return None


def _extern_meta(name, op):
    def meta(*args, **kwargs):
        from torch._subclasses.fake_tensor import FakeTensorMode

        device = _device_of(args) or torch.device("cpu")
        try:  # fake tensors on the real device: the same meta the ATen trace saw (CPU-specific shapes too)
            with FakeTensorMode() as mode:
                out = op(*(_fake(mode, a) for a in args), **{k: _fake(mode, v) for k, v in kwargs.items()})
        except PrimMetaError:
            raise
        except Exception as e:  # torch's own check failed: the input is bad for this op
            raise PrimMetaError(f"kiln.{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
        return _result_meta(out, device)

    return meta


def _fake(mode, x):
    if is_tensor_like(x):  # made inside the mode: a fake tensor on x's device, so fallback kernels may run
        return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
    if isinstance(x, (list, tuple)):
        return type(x)(_fake(mode, a) for a in x)
    return x


def _register_externs():
    for reason, specs in EXTERN.items():
        for spec in specs:
            op = _overload(spec)
            name = extern_name(op)
            EXTERN_REASON[name] = reason
            register_prim(name, Category.EXTERN, _extern_meta(name, op), f"ATen {op} (extern: {reason})",
                          aten=op)(lambda *a, _op=op, **k: _op(*a, **k))


_register_externs()


def _check_errors_meta(info, api_name, *, is_matrix):
    check(is_tensor_like(info) and info.dtype == torch.int32, "linalg_check_errors", "expected an int32 info tensor")
    return TensorMeta(tuple(info.shape), info.dtype, tuple(info.stride()), info.device)


@register_prim("linalg_check_errors", Category.EXTERN, _check_errors_meta,
               "raise as eager does when a LAPACK info tensor reports an error; returns info", impure=True)
def linalg_check_errors(info, api_name, *, is_matrix):
    aten._linalg_check_errors(info, api_name, is_matrix=is_matrix)
    return info


def _fallback_meta(op, *args, **kwargs):
    raise TypeError("kiln.fallback has no meta rule of its own: the ATen trace supplies it")


@register_prim("fallback", Category.FALLBACK, _fallback_meta, "run an ATen op that has no decomposition, as is")
def fallback(op, *args, **kwargs):
    return op(*args, **kwargs)
