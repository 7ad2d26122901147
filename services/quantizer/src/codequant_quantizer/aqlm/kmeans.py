"""Seeded k-means for codebook initialisation (Lloyd's algorithm; k-means++ seeding up to 4096 centroids)."""

from __future__ import annotations

import torch

#: Points compared with all centroids at once, at most; fewer when the distance matrix would exceed the workspace.
CHUNK = 16384
#: k-means++ seeding is a loop of k dependent steps (a device round trip each on a GPU): larger codebooks (1x16:
#: 65536 codewords) start from k distinct random points instead.
PLUS_PLUS_MAX = 4096
#: Bytes the [points, centroids] distance matrices (two float32 temporaries) may take.
WORKSPACE_BYTES = 1 << 30


def nearest_chunk(k: int, workspace_bytes: int = WORKSPACE_BYTES) -> int:
    """Points per distance computation against ``k`` centroids (65536 centroids: 2048 points, 1 GiB)."""
    return max(1, min(CHUNK, workspace_bytes // (2 * 4 * k)))


def nearest(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid for every point (squared Euclidean distance)."""
    chunk = nearest_chunk(centroids.shape[0])
    norms = centroids.square().sum(-1)
    out = torch.empty(points.shape[0], dtype=torch.long, device=points.device)
    for start in range(0, points.shape[0], chunk):
        block = points[start : start + chunk]
        distances = norms[None, :] - 2 * block @ centroids.T
        out[start : start + chunk] = distances.argmin(-1)
    return out


def kmeans(points: torch.Tensor, k: int, *, iterations: int = 50, generator: torch.Generator) -> torch.Tensor:
    """Centroids [k, dim] of ``points`` [n, dim]; needs n >= k."""
    n = points.shape[0]
    if n < k:
        raise ValueError(
            f"k-means needs at least {k} points (2^nbits_per_codebook), got {n}: use fewer bits "
            "per codebook or larger layers"
        )
    centroids = _plus_plus(points, k, generator) if k <= PLUS_PLUS_MAX else _random_points(points, k, generator)
    for _ in range(iterations):
        assignment = nearest(points, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=k).to(points.dtype)
        empty = counts == 0
        updated = sums / counts.clamp(min=1)[:, None]
        if empty.any():  # re-seed empty clusters with random points
            picks = torch.randint(0, n, (int(empty.sum()),), generator=generator)
            updated[empty] = points[picks]
        if torch.allclose(updated, centroids):
            centroids = updated
            break
        centroids = updated
    return centroids


def _plus_plus(points: torch.Tensor, k: int, generator: torch.Generator, sample: int = 65536) -> torch.Tensor:
    """k-means++ seeding on (at most ``sample``) points."""
    if points.shape[0] > sample:
        points = points[torch.randperm(points.shape[0], generator=generator)[:sample]]
    n = points.shape[0]
    chosen = [int(torch.randint(0, n, (1,), generator=generator))]
    distances = (points - points[chosen[0]]).square().sum(-1)
    for _ in range(1, k):
        total = distances.sum()
        if total <= 0:
            index = int(torch.randint(0, n, (1,), generator=generator))
        else:
            # Drawn on the CPU (where the generator lives), so CPU and CUDA runs pick the same points.
            index = int(torch.multinomial((distances / total).cpu(), 1, generator=generator))
        chosen.append(index)
        distances = torch.minimum(distances, (points - points[index]).square().sum(-1))
    return points[chosen].clone()


def _random_points(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k distinct points, drawn on the CPU (the same on every device)."""
    return points[torch.randperm(points.shape[0], generator=generator)[:k].to(points.device)].clone()
