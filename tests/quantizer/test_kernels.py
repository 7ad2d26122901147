"""KernelAqLinear: aqlm's kernels for the forward pass and the input's gradient, our own codebook and scale
gradients — the same outputs and gradients as AqLinear's plain autograd. On this machine aqlm dispatches to its
CPU kernels (numba for 8-bit codebooks, de-quantize and multiply otherwise); on a GPU the same code calls its
CUDA kernels, which only the device check exercises."""

from __future__ import annotations

import pytest
import torch

from codequant_quantizer.aqlm.kernels import KernelAqLinear, kernel_linears
from codequant_quantizer.aqlm.modules import AqLinear


def _layer(nbits: int, num_codebooks: int, bias: bool, seed: int = 0) -> AqLinear:
    generator = torch.Generator().manual_seed(seed)
    out, inp, group = 32, 64, 8
    codes = torch.randint(0, 2**nbits, (out, inp // group, num_codebooks), generator=generator)
    codebooks = torch.randn(num_codebooks, 2**nbits, 1, group, generator=generator) * 0.1
    scales = torch.rand(out, 1, 1, 1, generator=generator) + 0.5
    return AqLinear(codes, codebooks, scales, torch.randn(out, generator=generator) if bias else None)


@pytest.fixture
def one_numba_thread():
    """aqlm's numba kernel races on several threads (docs/quantizer.md); serving runs it on one, so do we."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize(("nbits", "num_codebooks", "bias", "kernel"), [
    (4, 2, True, "dequantize_gemm"),
    (8, 1, False, "numba_gemm_lut"),
])  # fmt: skip
def test_outputs_and_gradients_match_plain_autograd(one_numba_thread, nbits, num_codebooks, bias, kernel) -> None:
    reference = _layer(nbits, num_codebooks, bias)
    kernel_layer = KernelAqLinear(_layer(nbits, num_codebooks, bias), nbits, torch.float32)
    assert kernel_layer.kernels()[0].__name__ == kernel  # aqlm's own dispatch for these codebooks
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(1))
    grad = torch.randn(3, 5, 32, generator=torch.Generator().manual_seed(2))
    outputs = []
    for layer in (reference, kernel_layer):
        inp = x.clone().requires_grad_(True)
        out = layer(inp)
        out.backward(grad)
        outputs.append((out.detach(), inp.grad, layer.codebooks.grad, layer.scales.grad, layer.bias))
    (out_a, gx_a, gb_a, gs_a, bias_a), (out_b, gx_b, gb_b, gs_b, bias_b) = outputs
    torch.testing.assert_close(out_b, out_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx_b, gx_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gb_b, gb_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gs_b, gs_a, rtol=1e-4, atol=1e-5)
    if bias:
        torch.testing.assert_close(bias_b.grad, bias_a.grad, rtol=1e-5, atol=1e-5)
    assert torch.equal(kernel_layer.codes(), reference.codes.long())  # packed signed, unpacked back


def test_the_swap_shares_parameters_and_puts_the_layers_back() -> None:
    model = torch.nn.ModuleList([_layer(4, 1, False), torch.nn.ReLU(), _layer(4, 1, True, seed=1)])
    originals = [model[0], model[2]]
    with kernel_linears(model, 4, torch.float32) as swapped:
        assert swapped == 2 and all(isinstance(model[i], KernelAqLinear) for i in (0, 2))
        assert model[0].codebooks is originals[0].codebooks  # an optimizer step on one updates the other
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        before = originals[1].scales.detach().clone()
        x = torch.randn(4, 64)
        (model[0](x).square().sum() + model[2](x).square().sum()).backward()
        optimizer.step()
    assert [model[0], model[2]] == originals and not torch.equal(originals[1].scales, before)


def test_distillation_through_the_kernels_follows_plain_autograd() -> None:
    """The GPU path's end-to-end fine-tuning (every AqLinear swapped for a KernelAqLinear) on the CPU: the same
    losses, step after step, as the CPU path's plain autograd."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from codequant_quantizer.aqlm.distill import distill
    from codequant_quantizer.aqlm.modules import replace_module

    config = LlamaConfig(
        vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    teacher = LlamaForCausalLM(config).eval()

    def student() -> torch.nn.Module:
        model = LlamaForCausalLM(config).eval()
        model.load_state_dict(teacher.state_dict())
        generator = torch.Generator().manual_seed(1)
        for name, module in list(model.model.layers.named_modules()):
            if isinstance(module, torch.nn.Linear):
                out, inp = module.weight.shape
                codes = torch.randint(0, 16, (out, inp // 8, 1), generator=generator)
                books = torch.randn(1, 16, 1, 8, generator=generator) * 0.05
                replace_module(model.model.layers, name, AqLinear(codes, books, torch.ones(out, 1, 1, 1), None))
        return model

    ids = torch.randint(0, 64, (6, 16), generator=torch.Generator().manual_seed(2))
    params = {"epochs": 2, "lr": 1e-3, "batch_size": 2, "patience": 5, "seed": 0}
    plain = distill(student(), teacher, ids, **params)
    swapped = student()
    with kernel_linears(swapped, 4, torch.float32) as count:
        through_kernels = distill(swapped, teacher, ids, **params)
    assert count == 2 * 7
    for key in ("train_kl", "valid_kl"):
        torch.testing.assert_close(torch.tensor(through_kernels[key]), torch.tensor(plain[key]), rtol=1e-4, atol=1e-6)
    assert through_kernels["valid_kl"][-1] < through_kernels["valid_kl"][0]  # it learned
