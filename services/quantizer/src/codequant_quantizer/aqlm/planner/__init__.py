"""Memory and time plan of an AQLM run, from the model's config alone (no weights, no GPU).

Every figure follows from what the pipeline allocates (``aqlm/pipeline.py``): the model's host copy; two
activation buffers of nsamples x seqlen x hidden values (the current block's inputs, and its full-precision
outputs, overwritten by the quantized block's outputs); the current block in float32 on the compute device;
while a layer is quantized, its XᵀX, k-means, Adam and beam-search temporaries (bounded by the workspace the
search is given); the block fine-tuning's autograd tensors for one batch; and the end-to-end fine-tuning's teacher,
student, optimizer and one batch. Activations live on the compute device, in host memory or in a file: ``auto``
picks the first that fits. Times are a roofline estimate — floating-point work at an assumed sustained rate plus
memory traffic at an assumed bandwidth plus a cost per kernel launch — and are labelled as planned.

Modules, lowest first: ``settings`` and ``shapes`` (what the plan is given), ``memory`` and ``timing`` (what each
piece costs), ``peaks`` (the plan: where activations go, and the peaks), ``table`` (the printed form), ``run``
(plans on this machine).
"""

from __future__ import annotations

from codequant_quantizer.aqlm.planner.peaks import Plan, Stage, plan
from codequant_quantizer.aqlm.planner.run import detected_memory, detected_throughput, plan_for_run, print_plan
from codequant_quantizer.aqlm.planner.settings import DEVICES, GB, GIB, USABLE, Settings, Throughput, settings_for
from codequant_quantizer.aqlm.planner.shapes import Linear, ModelShape, load_model_config, model_shape
from codequant_quantizer.aqlm.planner.table import plan_table
from codequant_quantizer.aqlm.planner.timing import layer_seconds, planned_seconds

__all__ = [
    "DEVICES",
    "GB",
    "GIB",
    "USABLE",
    "Linear",
    "ModelShape",
    "Plan",
    "Settings",
    "Stage",
    "Throughput",
    "detected_memory",
    "detected_throughput",
    "layer_seconds",
    "load_model_config",
    "model_shape",
    "plan",
    "plan_for_run",
    "plan_table",
    "planned_seconds",
    "print_plan",
    "settings_for",
]
