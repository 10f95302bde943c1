"""OpenAPI 3.1 description of the studio's JSON API (served at ``/openapi.json``).

Written by hand so that it states exactly what :mod:`.validation` enforces (limits
included); ``tests/test_studio_api.py`` checks it against the routes.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from .validation import Limits

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_document(limits: Limits | None = None) -> dict[str, Any]:
    L = limits or Limits()
    row = {
        "type": "array", "minItems": 3, "maxItems": 3,
        "prefixItems": [
            {"type": "number", "minimum": -L.max_abs_offset, "maximum": L.max_abs_offset, "description": "dx"},
            {"type": "number", "minimum": -L.max_abs_offset, "maximum": L.max_abs_offset, "description": "dy"},
            {"type": "integer", "enum": [0, 1], "description": "pen_lifted: 1 = the pen lifts after this point"},
        ],
    }
    stroke3 = {"type": "array", "items": row, "maxItems": L.max_points,
               "description": "stroke-3 drawing in the model's data units: rows [dx, dy, pen_lifted]; the first "
                              "row is the move from the first point to the second"}
    out_sketches = {"type": "array", "items": _ref("Stroke3")}
    model = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$", "description": "a name from GET /api/models"}
    temperature = {"type": "number", "minimum": L.min_temperature, "maximum": L.max_temperature}
    seed = {"type": "integer", "minimum": 0, "maximum": L.max_seed,
            "description": "makes the answer reproducible; a random one is drawn (and returned) when absent"}
    tmode = {"type": "string", "enum": ["paper", "magenta_py", "magenta_js"], "default": "paper",
             "description": "how temperature scales the mixture (see sketchrnn.model.mdn.sample_step)"}
    n = {"type": "integer", "minimum": 1, "maximum": L.max_n, "default": 4}
    max_points = {"type": "integer", "minimum": 1, "maximum": L.max_new_points}

    def obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    schemas = {
        "Stroke3": stroke3,
        "Error": obj({"error": {"type": "string", "description": "one line: what is wrong and what to do"}}, ["error"]),
        "ModelSummary": {"type": "object", "required": ["name", "conditional"], "properties": {
            "name": model, "conditional": {"type": "boolean", "description": "has an encoder (VAE)"},
            "kind": {"type": "string", "enum": ["shipped", "magenta", "safetensors", "checkpoint"]},
            "max_seq_len": {"type": "integer"}, "scale_factor": {"type": "number"},
            "extent": {"type": "number", "description": "data units spanned by the page's canvas (known once loaded)"}}},
        "ModelList": obj({"models": {"type": "array", "items": _ref("ModelSummary")}}, ["models"]),
        "CompleteRequest": obj({
            "model": model, "strokes": _ref("Stroke3"), "n": n, "temperature": {**temperature, "default": 0.5},
            "max_points": {**max_points, "default": 100}, "seed": seed, "temperature_mode": tmode,
            "z_from": {"type": "string", "enum": ["prior", "input"], "default": "prior",
                       "description": "conditional models: z ~ N(0, I) or z = mu(strokes)"},
            "allow_end": {"type": "boolean", "default": True, "description": "false: always draw max_points points"},
        }, ["model", "strokes"]),
        "CompleteResponse": obj({"model": model, "seed": seed, "completions": {
            **out_sketches, "description": "one per sample; each holds only the new points, continuing from the "
                                           "last point of the input"}}, ["completions"]),
        "ReconstructRequest": obj({"model": model, "strokes": _ref("Stroke3"), "n": n,
                                   "temperature": {**temperature, "default": 0.5}, "seed": seed,
                                   "temperature_mode": tmode}, ["model", "strokes"]),
        "ReconstructResponse": obj({"model": model, "seed": seed, "reconstructions": out_sketches}, ["reconstructions"]),
        "InterpolateRequest": obj({"model": model, "a": _ref("Stroke3"), "b": _ref("Stroke3"),
                                   "steps": {"type": "integer", "minimum": 2, "maximum": L.max_steps, "default": 6},
                                   "temperature": {**temperature, "default": 0.1}, "seed": seed,
                                   "temperature_mode": tmode}, ["model", "a", "b"]),
        "InterpolateResponse": obj({"model": model, "seed": seed, "t": {"type": "array", "items": {"type": "number"}},
                                    "sketches": out_sketches}, ["t", "sketches"]),
        "SampleRequest": obj({"model": model, "n": n, "temperature": {**temperature, "default": 0.5}, "seed": seed,
                              "max_points": max_points, "temperature_mode": tmode}, ["model"]),
        "SampleResponse": obj({"model": model, "seed": seed, "sketches": out_sketches}, ["sketches"]),
    }

    def err(desc: str) -> dict[str, Any]:
        return {"description": desc, "content": {"application/json": {"schema": _ref("Error")}}}

    errors = {"400": err("invalid request (field, type, range, NaN, unknown field)"),
              "404": err("unknown model"), "413": err(f"body over {L.max_body_bytes} bytes or more than "
                                                      f"{L.max_points} points"),
              "415": err("Content-Type is not application/json"), "503": err("model busy; retry")}

    def post(summary: str, req: str, resp: str) -> dict[str, Any]:
        return {"post": {"summary": summary, "requestBody": {"required": True, "content": {
            "application/json": {"schema": _ref(req)}}},
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(resp)}}},
                          **errors}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "sketchrnn studio API", "version": __version__,
                 "description": "Draw with sketch-rnn models (Ha & Eck 2017). Drawings travel as stroke-3 lists in "
                                "the model's data units (pixels of its training data)."},
        "paths": {
            "/api/models": {"get": {"summary": "models this server offers", "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": _ref("ModelList")}}}}}},
            "/api/models/{name}": {"get": {"summary": "one model (loads it; adds extent)", "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": model}], "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": _ref("ModelSummary")}}},
                "400": errors["400"], "404": errors["404"]}}},
            "/api/complete": post("N continuations of a drawing (decoder fed the drawing as a prefix)",
                                  "CompleteRequest", "CompleteResponse"),
            "/api/reconstruct": post("encode a drawing (z = mu) and decode it n times (conditional models)",
                                     "ReconstructRequest", "ReconstructResponse"),
            "/api/interpolate": post("decode slerp(mu(a), mu(b), t) for evenly spaced t (conditional models)",
                                     "InterpolateRequest", "InterpolateResponse"),
            "/api/sample": post("n sketches from the prior", "SampleRequest", "SampleResponse"),
        },
        "components": {"schemas": schemas},
    }
