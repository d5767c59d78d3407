"""A small builder for hand-assembled ONNX graphs, shared by every model family."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization is opset 17; onnxruntime-node of the pinned version runs it.
CONTRIB_DOMAIN = "com.microsoft"  # the Tokenizer op ships in every onnxruntime build, Node included


class GraphBuilder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._ids = itertools.count()

    def fresh(self, hint: str) -> str:
        return f"{hint}_{next(self._ids)}"

    def const(self, value: np.ndarray, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(
        self, op_type: str, inputs: list[str], hint: str | None = None, domain: str = "", **attrs: Any
    ) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, inputs, [out], name=self.fresh(op_type), domain=domain, **attrs)
        )
        return out

    def input(self, name: str, elem_type: int, shape: list[str | int]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, source: str, name: str, elem_type: int, shape: list[str | int]) -> None:
        self.nodes.append(helper.make_node("Identity", [source], [name], name=self.fresh("output")))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def linear_logits(self, features: str, coef: np.ndarray, intercept: np.ndarray) -> str:
        """features @ coef.T + intercept."""
        return self.op(
            "Gemm",
            [
                features,
                self.const(coef.astype(np.float32), "coef"),
                self.const(intercept.astype(np.float32), "intercept"),
            ],
            "logits",
            transB=1,
        )

    def tempered(self, logits: str, temperature: float) -> str:
        return self.op("Div", [logits, self.const(np.array(temperature, np.float32), "temperature")])

    def build(self) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(CONTRIB_DOMAIN, 1)],
            producer_name="switchboard-training",
        )
        model.ir_version = 8  # readable by every onnxruntime since 1.11
        onnx.checker.check_model(model)
        return model


FLOAT = TensorProto.FLOAT
DOUBLE = TensorProto.DOUBLE
INT64 = TensorProto.INT64
STRING = TensorProto.STRING
