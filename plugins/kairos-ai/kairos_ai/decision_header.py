"""The `ai-decision-header` stage: tell the client how its backend was chosen."""

from __future__ import annotations

from kairos_ai.balancer import DECISION_KEY, Decision
from kairos_ai.config import DecisionHeaderConfig
from kairos_core import BuildContext, Handler, Middleware, RequestContext, Response


def build_decision_header(config: DecisionHeaderConfig, context: BuildContext) -> Middleware:
    """A stage that copies the `ai` balancer's decision from `ctx.state` into a response header."""
    header = config.header
    with_reason = config.reason

    async def decision_header(ctx: RequestContext, call_next: Handler) -> Response:
        response = await call_next(ctx)
        decision = ctx.state.get(DECISION_KEY)
        if isinstance(decision, Decision):
            response.headers[header] = decision.header_value(with_reason)
        return response

    return decision_header
