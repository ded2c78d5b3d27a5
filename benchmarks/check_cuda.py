"""On a CUDA machine: `measure_latency` on the GPU, our v2 against torchvision's on the GPU, a v1 training step.

    python benchmarks/check_cuda.py     # needs a GPU; not part of the test suite
"""

import torch
import torchvision

import shufflesearch
from shufflesearch.genome._zoo import ZOO
from shufflesearch.models._registry import convert_torchvision_shufflenet_v2


def latencies() -> None:
    for name in ["shufflenet_v1_g3_x1_0", "shufflenet_v2_x1_0", "shufflenet_v1_g8_x2_0"]:
        cpu = shufflesearch.measure_latency(ZOO[name], 224, batch=1, threads=torch.get_num_threads())
        print(f"{name}: CPU ({torch.get_num_threads()} threads) batch 1 median {cpu.median_ms:.2f} ms")
        for batch in (1, 64):
            gpu = shufflesearch.measure_latency(ZOO[name], 224, batch=batch, device="cuda")
            print(f"  CUDA batch {batch}: median {gpu.median_ms:.3f} ms, p90 {gpu.p90_ms:.3f} ms, "
                  f"channels_last={gpu.channels_last}")


def same_logits_as_torchvision() -> None:
    reference = torchvision.models.shufflenet_v2_x1_0().eval().cuda()
    ours = shufflesearch.build(ZOO["shufflenet_v2_x1_0"]).eval().cuda()
    ours.load_state_dict(convert_torchvision_shufflenet_v2(reference.state_dict()))
    x = torch.randn(8, 3, 224, 224, device="cuda")
    with torch.no_grad():
        print("v2 x1.0 on CUDA, max |ours - torchvision| logit:", (ours(x) - reference(x)).abs().max().item())


def training_steps() -> None:
    model = shufflesearch.build(ZOO["shufflenet_v1_g3_x0_5"], num_classes=10).cuda().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 3, 64, 64, device="cuda"), torch.randint(0, 10, (64,), device="cuda")
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    finite = all(torch.isfinite(p.grad).all().item() for p in model.parameters())
    print(f"v1 g3 x0.5: 3 training steps on CUDA, loss {loss.item():.3f}, every gradient finite: {finite}")


if __name__ == "__main__":
    print(torch.__version__, torch.cuda.get_device_name(0))
    latencies()
    same_logits_as_torchvision()
    training_steps()
