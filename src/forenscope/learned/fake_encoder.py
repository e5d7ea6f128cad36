"""A tiny stand-in for the CLIP encoder with the same I/O signature, for tests and CI.

pixel_values (N, 3, 224, 224) -> image_embeds (N, 512), hidden tokens (N, 197, 768). Tokens are
16x16 average-pooled colours mapped to 768-d; the class token is their mean; the embedding is
post_layernorm(class token) @ visual_projection, so `ClipEncoder.project_patches` applies
exactly as on the real graph. With `blocks` > 0 it also computes intermediate "block outputs"
named like the real graph's (`/vision_model/encoder/layers.N/Add_1_output_0`, N < blocks;
the last block is `last_hidden_state`, as on the real graph), each a per-channel rescaling of
the last hidden state; they feed nothing, so the two graph outputs are unchanged.
A few MB, built in well under a second; carries no knowledge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLOCK_OUTPUT = "/vision_model/encoder/layers.{}/Add_1_output_0"


def build_fake_encoder(path: Path, seed: int = 0, blocks: int = 0) -> Path:
    """Write the fake encoder ONNX file to `path` and return it (with `blocks` side outputs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 1, (3, 768)).astype(np.float32), "embed_w"),
        numpy_helper.from_array(np.array([0, 3, 196], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "cls_index"),  # scalar: drops axis
        numpy_helper.from_array(
            rng.uniform(0.5, 1.5, 768).astype(np.float32), "vision_model.post_layernorm.weight"
        ),
        numpy_helper.from_array(
            rng.normal(0, 0.1, 768).astype(np.float32), "vision_model.post_layernorm.bias"
        ),
        numpy_helper.from_array(rng.normal(0, 0.05, (768, 512)).astype(np.float32), "proj_w"),
    ]
    nodes = [
        helper.make_node(
            "AveragePool", ["pixel_values"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]
        ),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),  # (N, 3, 196)
        helper.make_node("Transpose", ["flat"], ["patches3"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["patches3", "embed_w"], ["patch_tokens"]),
        helper.make_node("ReduceMean", ["patch_tokens"], ["cls"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["cls", "patch_tokens"], ["last_hidden_state"], axis=1),
        helper.make_node("Gather", ["last_hidden_state", "cls_index"], ["cls_flat"], axis=1),
        helper.make_node(
            "LayerNormalization",
            ["cls_flat", "vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias"],
            ["normed"],
            axis=-1,
            epsilon=1e-5,
        ),
        helper.make_node(
            "MatMul", ["normed", "proj_w"], ["image_embeds"], name="/visual_projection/MatMul"
        ),
    ]
    block_rng = np.random.default_rng(seed + 1)  # own stream: the main weights stay as before
    for i in range(blocks):
        gain = block_rng.uniform(-1.0, 2.0, 768).astype(np.float32)
        inits.append(numpy_helper.from_array(gain, f"block{i}_gain"))
        nodes.append(
            helper.make_node(
                "Mul", ["last_hidden_state", f"block{i}_gain"], [BLOCK_OUTPUT.format(i)]
            )
        )
    graph = helper.make_graph(
        nodes,
        "fake_clip",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [
            helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", 512]),
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", 197, 768]
            ),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
