"""Beam search over AQLM codes that minimises ||X Wᵀ - X Ŵᵀ||² = tr((W - Ŵ) XᵀX (W - Ŵ)ᵀ).

Output groups are independent (changing a code of one output group does not change another group's
error), so the search runs for all of them at once; it walks the input groups and, inside each, the
codebooks, and for every output group keeps the ``beam_size`` best code combinations. Changing one
code of output group o, input group i, codebook m from c_old to c by D = s_o (C[m, c] - C[m, c_old])
changes the loss by  -2 ⟨D, (E XᵀX)_{o, i}⟩ + Σ_rows D XᵀX_{ii} Dᵀ,  with E = W - Ŵ: every candidate
is scored with a few small matrix products.
"""

from __future__ import annotations

import torch

from codequant_quantizer.aqlm.weight import AqlmShape, dequantize

#: Temporaries of shape [beams, codewords, output groups] alive at once while candidates are scored.
SCORE_TEMPORARIES = 6


def output_groups_per_pass(num_out: int, beam_size: int, codebook_size: int, workspace_bytes: int) -> int:
    """How many output groups one pass of the search takes so that its scoring temporaries (float32
    [beams, codewords, groups]) stay within ``workspace_bytes``; all of them when they fit."""
    per_group = SCORE_TEMPORARIES * beam_size * codebook_size * 4
    return max(1, min(num_out, workspace_bytes // per_group))


@torch.no_grad()
def beam_search(
    weight: torch.Tensor,
    xtx: torch.Tensor,
    codes: torch.Tensor,
    codebooks: torch.Tensor,
    scales: torch.Tensor,
    shape: AqlmShape,
    beam_size: int,
    workspace_bytes: int = 1 << 30,
) -> torch.Tensor:
    """Improved codes [O, I, M] (never worse than ``codes``: the old codes are always among the candidates).

    Output groups are searched in passes of at most ``output_groups_per_pass`` groups (one pass when the
    scoring temporaries fit ``workspace_bytes``; e.g. 1x16 codebooks on a 4096-row layer need several)."""
    step = output_groups_per_pass(codes.shape[0], beam_size, codebooks.shape[1], workspace_bytes)
    if step >= codes.shape[0]:
        return _search(weight, xtx, codes, codebooks, scales, shape, beam_size)
    og = shape.out_group_size
    parts = [
        _search(
            weight[o * og : (o + step) * og],
            xtx,
            codes[o : o + step],
            codebooks,
            scales[o : o + step],
            shape,
            beam_size,
        )
        for o in range(0, codes.shape[0], step)
    ]
    return torch.cat(parts)


def _search(
    weight: torch.Tensor,
    xtx: torch.Tensor,
    codes: torch.Tensor,
    codebooks: torch.Tensor,
    scales: torch.Tensor,
    shape: AqlmShape,
    beam_size: int,
) -> torch.Tensor:
    num_out, num_in, m = codes.shape
    og, ig = shape.out_group_size, shape.in_group_size
    k = codebooks.shape[1]
    s = scales.reshape(num_out)
    flat_books = codebooks.reshape(m, k, og * ig)
    # Per beam b: codes [B, O, I, M] and error E = W - Ŵ [B, out, in] (rows grouped by output group).
    beam_codes = codes.unsqueeze(0).clone()
    error = (weight - dequantize(codes, codebooks, scales)).unsqueeze(0)
    loss = _group_losses(error, xtx, num_out, og)  # [B, O]
    for i in range(num_in):
        cols = slice(i * ig, (i + 1) * ig)
        h_ii = xtx[cols, cols]
        for book in range(m):
            candidates = flat_books[book]  # [K, og*ig]
            cand_h = (candidates.view(k, og, ig) @ h_ii).reshape(k, og * ig)  # rows of each candidate times H_ii
            cand_norm = (cand_h * candidates).sum(-1)  # [K]
            beams = beam_codes.shape[0]
            g = (error @ xtx[:, cols]).view(beams, num_out, og * ig)  # (E XᵀX) restricted to the input group
            old = candidates[beam_codes[:, :, i, book]]  # [B, O, og*ig]
            old_h = (old.view(beams, num_out, og, ig) @ h_ii).reshape(beams, num_out, og * ig)
            dot_new = torch.einsum("kc,boc->bko", candidates, g)
            dot_old = (old * g).sum(-1)  # [B, O]
            cross = torch.einsum("kc,boc->bko", cand_h, old)
            old_norm = (old_h * old).sum(-1)
            delta = -2 * s * (dot_new - dot_old[:, None, :]) + s.square() * (
                cand_norm[None, :, None] - 2 * cross + old_norm[:, None, :]
            )
            totals = (loss[:, None, :] + delta).permute(2, 0, 1).reshape(num_out, beams * k)  # [O, B*K]
            width = min(beam_size, beams * k)
            best, picks = torch.topk(totals, width, dim=1, largest=False, sorted=True)  # [O, W]
            source, chosen = picks // k, picks % k
            rows = torch.arange(num_out, device=codes.device)
            new_codes = beam_codes[source.T, rows[None, :]]  # [W, O, I, M]
            new_codes[:, :, i, book] = chosen.T
            change = (candidates[chosen.T] - old[source.T, rows[None, :]]) * s[None, :, None]  # [W, O, og*ig]
            new_error = error.view(beams, num_out, og, -1)[source.T, rows[None, :]].clone()  # [W, O, og, in]
            new_error[..., cols] -= change.view(width, num_out, og, ig)
            beam_codes, loss = new_codes, best.T.contiguous()
            error = new_error.reshape(width, num_out * og, -1)
    return beam_codes[0]


def _group_losses(error: torch.Tensor, xtx: torch.Tensor, num_out: int, og: int) -> torch.Tensor:
    per_row = ((error @ xtx) * error).sum(-1)  # [B, out]
    return per_row.view(error.shape[0], num_out, og).sum(-1)
