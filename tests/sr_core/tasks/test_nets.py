"""Task networks (U-Net, UNet++): shapes, padding, channel views, batch-norm adaptation modes, save/load."""

from __future__ import annotations

import pytest
import torch

from sr_core.tasks.nets import (
    AdaptiveBatchNorm2d,
    TaskChannels,
    TaskFeatures,
    adapt_bn_statistics,
    build_task_net,
    load_task_net,
    predict_probs,
    save_task_net,
    set_bn_mode,
)


@pytest.mark.parametrize("arch", ["unet", "unetpp"])
def test_shapes_features_and_input_checks(arch, gen):
    net = build_task_net(arch, num_features=4, depth=2, num_classes=3).eval()
    x = torch.rand(2, 4, 16, 20, generator=gen)
    f = net.forward_features(x)
    assert f["logits"].shape == (2, 3, 16, 20) and f["enc2"].shape == (2, 16, 4, 5)
    torch.testing.assert_close(net(x), f["logits"])
    assert set(TaskFeatures(net, ["enc0", "dec0"])(x)) == {"enc0", "dec0"}
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 4, 18, 20))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        net(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="unknown feature layers"):
        TaskFeatures(net, ["enc9"])(x)
    with pytest.raises(ValueError, match="arch must be one of"):
        build_task_net("segformer")
    with pytest.raises(ValueError, match="depth"):
        build_task_net(arch, depth=0)


def test_predict_probs_pads_and_crops(gen):
    net = build_task_net("unet", num_features=4, depth=2).eval()
    x = torch.rand(1, 4, 16, 16, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(predict_probs(net, x), net(x).sigmoid())
        p = predict_probs(net, x[..., :14, :15])
    assert p.shape == (1, 3, 14, 15) and ((p > 0) & (p < 1)).all()


def test_sample_mode_is_per_image_and_batch_mode_of_one_equals_it(gen):
    torch.manual_seed(0)
    net = build_task_net("unet", num_features=4, depth=2)
    net.train()
    net(torch.rand(4, 4, 16, 16, generator=gen))  # move the running statistics away from (0, 1)
    net.eval()
    x = torch.rand(3, 4, 16, 16, generator=gen) * torch.tensor([1.0, 2.0, 0.5]).view(3, 1, 1, 1)
    with torch.no_grad():
        set_bn_mode(net, "sample")
        whole = net(x)
        one_by_one = torch.cat([net(x[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(whole, one_by_one, rtol=1e-5, atol=1e-5)
        set_bn_mode(net, "batch")
        torch.testing.assert_close(net(x[:1]), one_by_one[:1], rtol=1e-5, atol=1e-5)
        set_bn_mode(net, "running")
        assert not torch.allclose(net(x[:1]), one_by_one[:1], atol=1e-3)
    with pytest.raises(ValueError, match="mode"):
        set_bn_mode(net, "instance")


def test_sample_mode_closed_form_and_gradcheck(gen):
    bn = AdaptiveBatchNorm2d(2, mode="sample").double().eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.1, -1.0]))
    x = torch.rand(2, 2, 5, 4, generator=gen, dtype=torch.float64)
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    want = (x - mu) / torch.sqrt(var + bn.eps) * bn.weight.view(1, 2, 1, 1) + bn.bias.view(1, 2, 1, 1)
    torch.testing.assert_close(bn(x), want)
    assert torch.autograd.gradcheck(bn, (x.clone().requires_grad_(True),))


def test_dataset_wise_adaptation_sets_running_stats_to_the_data_mean(gen):
    net = build_task_net("unet", num_features=4, depth=2)
    data = [torch.rand(2, 4, 16, 16, generator=gen) + 0.5 for _ in range(3)]
    adapt_bn_statistics(net, data)
    assert not net.training
    bn0 = net.enc[0][1]
    with torch.no_grad():
        conv0 = torch.cat([net.enc[0][0]((x - net.mean) / net.std) for x in data])
    torch.testing.assert_close(bn0.running_mean, conv0.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn0.momentum == 0.1 and bn0.mode == "running"
    with pytest.raises(ValueError, match="at least one batch"):
        adapt_bn_statistics(net, [])


def test_save_load_roundtrip(tmp_path, gen):
    net = build_task_net("unetpp", num_features=4, depth=2, mean=[0.1] * 4, std=[0.05] * 4).eval()
    save_task_net(net, tmp_path / "tn", tasks=("water", "vegetation", "builtup"), meta={"x": 1})
    back, tasks = load_task_net(tmp_path / "tn")
    x = torch.rand(1, 4, 8, 8, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)
    assert tasks == ["water", "vegetation", "builtup"]
    with pytest.raises(ValueError, match="output channels"):
        save_task_net(net, tmp_path / "bad", tasks=("water",))
    with pytest.raises(FileNotFoundError):
        load_task_net(tmp_path / "nothing")


def test_task_channels_selects_and_pads(gen):
    net = build_task_net("unet", num_features=4, depth=2).eval()
    x = torch.rand(1, 4, 16, 16, generator=gen)
    ch = TaskChannels(net, [2, 0])
    with torch.no_grad():
        torch.testing.assert_close(ch(x), net(x)[:, [2, 0]])
        assert ch(x[..., :13, :14]).shape == (1, 2, 13, 14)
    with pytest.raises(ValueError, match="output channels"):
        TaskChannels(net, [3])
