"""The emulation fixtures (moto with the ELBv2 and ECS emulations, and the `alb` load balancer), shared
with the adapter tests here."""

from __future__ import annotations

from local.emulation.conftest import Alb as Alb
from local.emulation.conftest import alb as alb
from local.emulation.conftest import ecs_emulation as ecs_emulation
from local.emulation.conftest import elbv2_emulation as elbv2_emulation
