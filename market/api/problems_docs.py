"""Each problem `type` URI resolves on this server to a description of that problem."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.params import FromPath

from market.api.access import public
from market.api.problems import PROBLEM_BASE, PROBLEM_TYPES
from market.errors import NotFoundError


class ProblemTypeDescription(msgspec.Struct):
    type: str
    title: str
    description: str


class ProblemTypeController(Controller):
    path = PROBLEM_BASE.rstrip("/")
    tags = ["problems"]
    opt = public()

    @get("/", summary="Every problem type the API answers with")
    async def list_problem_types(self) -> list[ProblemTypeDescription]:
        return [_describe(slug) for slug in PROBLEM_TYPES]

    @get("/{slug:str}", summary="One problem type")
    async def get_problem_type(self, slug: FromPath[str]) -> ProblemTypeDescription:
        if slug not in PROBLEM_TYPES:
            raise NotFoundError(f"no problem type {slug!r}")
        return _describe(slug)


def _describe(slug: str) -> ProblemTypeDescription:
    problem = PROBLEM_TYPES[slug]
    return ProblemTypeDescription(type=PROBLEM_BASE + slug, title=problem.title,
                                  description=problem.description)
