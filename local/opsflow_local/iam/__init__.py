"""IAM held in the embedded runtime: every call runs as the role the template deploys for its caller."""

from opsflow_local.iam.enforcer import Denial, IamEnforcement, Principal, acting_as
from opsflow_local.iam.roles import DeployedRoles, Role, translate

__all__ = ["Denial", "DeployedRoles", "IamEnforcement", "Principal", "Role", "acting_as", "translate"]
