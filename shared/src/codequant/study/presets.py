"""Named AQLM settings of the reference study (Giagnorio et al., 2025, after Egiazarian et al., 2024).

Each preset is (num_codebooks M, nbits_per_codebook B, in_group_size g); the nominal
code cost is M*B/g bits per weight.
"""

from __future__ import annotations

AQLM_PRESETS: dict[str, dict[str, int]] = {
    "aqlm-8bit": {"num_codebooks": 4, "nbits_per_codebook": 15, "in_group_size": 8, "out_group_size": 1},
    "aqlm-4bit": {"num_codebooks": 2, "nbits_per_codebook": 15, "in_group_size": 8, "out_group_size": 1},
    "aqlm-3bit": {"num_codebooks": 2, "nbits_per_codebook": 12, "in_group_size": 8, "out_group_size": 1},
    "aqlm-2bit": {"num_codebooks": 1, "nbits_per_codebook": 15, "in_group_size": 8, "out_group_size": 1},
}
