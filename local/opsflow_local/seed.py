"""Realistic resources to run workflows against: a VPC, instances with several EBS volumes, groups on a
launch template and on a legacy launch configuration. Used by the demo and the end-to-end tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsflow_local.runtime import AccountRegion, EmbeddedAws

OPT_IN = {"Key": "opsflow:managed", "Value": "true"}

# A root volume and two data volumes of different types and sizes.
APP_SERVER_VOLUMES: list[dict[str, Any]] = [
    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True}},
    {
        "DeviceName": "/dev/sdb",
        "Ebs": {"VolumeSize": 100, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250},
    },
    {"DeviceName": "/dev/sdc", "Ebs": {"VolumeSize": 50, "VolumeType": "io2", "Iops": 5000}},
]


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_id: str
    security_group_id: str
    base_image_id: str


def network(aws: EmbeddedAws) -> Network:
    ec2 = aws.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.40.1.0/24", AvailabilityZone=f"{aws.region}a")[
        "Subnet"
    ]["SubnetId"]
    group_id = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=vpc_id)["GroupId"]
    return Network(vpc_id, subnet_id, group_id, base_image_id(aws))


def base_image_id(aws: EmbeddedAws | AccountRegion) -> str:
    """The newest Amazon Linux 2023 image moto knows (filtered: listing all of them takes seconds)."""
    images = aws.client("ec2").describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
    )["Images"]
    return str(max(images, key=lambda image: image["CreationDate"])["ImageId"])


def instance(
    aws: EmbeddedAws,
    net: Network,
    name: str,
    volumes: list[dict[str, Any]] = APP_SERVER_VOLUMES,
    opted_in: bool = True,
) -> str:
    tags = [{"Key": "Name", "Value": name}] + ([OPT_IN] if opted_in else [])
    return str(
        aws.client("ec2").run_instances(
            ImageId=net.base_image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="m6i.large",
            SubnetId=net.subnet_id,
            SecurityGroupIds=[net.security_group_id],
            BlockDeviceMappings=volumes,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]["InstanceId"]
    )


def launch_template_group(
    aws: EmbeddedAws, net: Network, name: str, capacity: int = 2, opted_in: bool = True
) -> str:
    """A group on launch template `name` version 1 (pinned). Returns the template id."""
    template_id = aws.client("ec2").create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": net.base_image_id,
            "InstanceType": "m6i.large",
            "SecurityGroupIds": [net.security_group_id],
            "UserData": "IyEvYmluL2Jhc2gKc3lzdGVtY3RsIHN0YXJ0IGFwcAo=",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": name}]}],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        MinSize=capacity,
        MaxSize=capacity * 2,
        DesiredCapacity=capacity,
        VPCZoneIdentifier=net.subnet_id,
        Tags=[{**OPT_IN, "PropagateAtLaunch": False}] if opted_in else [],
    )
    return str(template_id)


def opted_in_template(aws: EmbeddedAws, name: str) -> str:
    """A launch template carrying the opt-in tag, with no group (a distribution publishes to it). Returns its
    id."""
    return str(
        aws.client("ec2").create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": base_image_id(aws), "InstanceType": "m6i.large"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [OPT_IN]}],
        )["LaunchTemplate"]["LaunchTemplateId"]
    )


def launch_configuration_group(aws: EmbeddedAws, net: Network, name: str, capacity: int = 1) -> str:
    """A legacy group on a launch configuration. Returns the configuration's name."""
    configuration = f"{name}-v1"
    autoscaling = aws.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=configuration,
        ImageId=net.base_image_id,
        InstanceType="t3.medium",
        SecurityGroups=[net.security_group_id],
        UserData="#!/bin/bash\nsystemctl start legacy-app\n",
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}],
        InstanceMonitoring={"Enabled": True},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=configuration,
        MinSize=capacity,
        MaxSize=capacity,
        DesiredCapacity=capacity,
        VPCZoneIdentifier=net.subnet_id,
        Tags=[{**OPT_IN, "PropagateAtLaunch": False}],
    )
    return configuration


def alarm(aws: EmbeddedAws, name: str) -> str:
    """A CloudWatch alarm on a load balancer's 5xx count, in state OK until a test sets it."""
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    return name


ENVIRONMENT_TAG = "opsflow:environment"


@dataclass(frozen=True)
class SeededEnvironment:
    """An environment's resources, and neighbours that Opsflow must never touch."""

    name: str
    instances: list[str]  # standalone, opted in, running
    stopped_instance: str  # opted in, stopped by hand before any shutdown
    groups: list[str]
    cluster_arn: str
    services: list[str]
    databases: list[str]  # "instance:<id>" / "cluster:<id>", all available
    outsiders: dict[str, str]  # what -> id: another environment's, or not opted in


def _env_tags(environment: str, opted_in: bool = True) -> list[dict[str, str]]:
    return [{"Key": ENVIRONMENT_TAG, "Value": environment}] + ([OPT_IN] if opted_in else [])


def _tagged_instance(aws: EmbeddedAws, net: Network, name: str, tags: list[dict[str, str]]) -> str:
    return str(
        aws.client("ec2").run_instances(
            ImageId=net.base_image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.small",
            SubnetId=net.subnet_id,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}, *tags]}],
        )["Instances"][0]["InstanceId"]
    )


def _environment_group(
    aws: EmbeddedAws, net: Network, name: str, tags: list[dict[str, str]], sizes: tuple[int, int, int]
) -> str:
    ec2 = aws.client("ec2")
    template_id = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": net.base_image_id, "InstanceType": "t3.small"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    minimum, desired, maximum = sizes
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        MinSize=minimum,
        MaxSize=maximum,
        DesiredCapacity=desired,
        VPCZoneIdentifier=net.subnet_id,
        Tags=[{**tag, "PropagateAtLaunch": True} for tag in tags],
    )
    return name


def _service(aws: EmbeddedAws, cluster: str, name: str, tags: list[dict[str, str]], desired: int) -> str:
    ecs = aws.client("ecs")
    task_definition = ecs.register_task_definition(
        family=name,
        containerDefinitions=[{"name": "app", "image": "public.ecr.aws/nginx/nginx:1.27", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=desired,
        tags=[{"key": t["Key"], "value": t["Value"]} for t in tags],
    )
    return name


def _database(aws: EmbeddedAws, identifier: str, tags: list[dict[str, str]], **extra: Any) -> str:
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass=extra.pop("DBInstanceClass", "db.t4g.medium"),
        Engine=extra.pop("Engine", "postgres"),
        AllocatedStorage=20,
        MasterUsername="app",
        MasterUserPassword="not-a-secret-0",
        Tags=tags,
        **extra,
    )
    return f"instance:{identifier}"


def _aurora(aws: EmbeddedAws, identifier: str, tags: list[dict[str, str]], members: int = 2) -> str:
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        MasterUsername="app",
        MasterUserPassword="not-a-secret-0",
        Tags=tags,
    )
    for index in range(members):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{identifier}-{index + 1}",
            DBClusterIdentifier=identifier,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
            Tags=tags,
        )
    return f"cluster:{identifier}"


def environment(
    aws: EmbeddedAws,
    net: Network,
    name: str,
    *,
    instances: int = 3,
    refusing_database: bool = False,
) -> SeededEnvironment:
    """A small non-production environment: standalone instances (one stopped by hand), two groups, an ECS
    cluster with two services, a PostgreSQL instance and an Aurora cluster; plus neighbours of another
    environment and resources of this one that are not opted in. With `refusing_database`, a SQL Server
    Multi-AZ instance that AWS refuses to stop."""
    tags = _env_tags(name)
    running = [_tagged_instance(aws, net, f"{name}-worker-{n}", tags) for n in range(1, instances + 1)]
    stopped = _tagged_instance(aws, net, f"{name}-bastion", tags)
    aws.client("ec2").stop_instances(InstanceIds=[stopped])
    groups = [
        _environment_group(aws, net, f"{name}-web", tags, (2, 2, 4)),
        _environment_group(aws, net, f"{name}-jobs", tags, (1, 3, 6)),
    ]
    cluster_arn = aws.client("ecs").create_cluster(clusterName=f"{name}-apps")["cluster"]["clusterArn"]
    services = [
        _service(aws, cluster_arn, f"{name}-api", tags, 2),
        _service(aws, cluster_arn, f"{name}-ui", tags, 1),
    ]
    databases = [_database(aws, f"{name}-orders", tags), _aurora(aws, f"{name}-reports", tags)]
    if refusing_database:
        databases.append(
            _database(
                aws,
                f"{name}-ledger",
                tags,
                Engine="sqlserver-se",
                DBInstanceClass="db.m6i.xlarge",
                MultiAZ=True,
                LicenseModel="license-included",
            )
        )
    other = "other" if name != "other" else "another"
    # Named after this environment too, so that one runtime can hold several seeded environments.
    outsiders = {
        "instance of another environment": _tagged_instance(
            aws, net, f"{other}-worker-near-{name}", _env_tags(other)
        ),
        "instance not opted in": _tagged_instance(
            aws, net, f"{name}-manual", _env_tags(name, opted_in=False)
        ),
        "group of another environment": _environment_group(
            aws, net, f"{other}-web-near-{name}", _env_tags(other), (1, 1, 2)
        ),
        "service not opted in": _service(
            aws, cluster_arn, f"{name}-admin", _env_tags(name, opted_in=False), 1
        ),
        "database of another environment": _database(aws, f"{other}-orders-near-{name}", _env_tags(other)),
    }
    return SeededEnvironment(
        name=name,
        instances=running,
        stopped_instance=stopped,
        groups=groups,
        cluster_arn=cluster_arn,
        services=services,
        databases=databases,
        outsiders=outsiders,
    )


@dataclass(frozen=True)
class LargeEnvironment:
    """An environment of benchmark size: every resource opted in and running."""

    name: str
    instances: list[str]  # standalone
    groups: list[str]  # one instance each
    services: list[tuple[str, str]]  # (cluster ARN, service name)
    databases: list[str]  # "instance:<id>" / "cluster:<id>"
    clusters: list[str]  # ECS cluster ARNs
    aurora_members: int


def large_environment(
    aws: EmbeddedAws,
    net: Network,
    name: str,
    *,
    instances: int,
    groups: int,
    services: int,
    databases: int,
    clusters: int = 4,
    launch_batch: int = 1000,
) -> LargeEnvironment:
    """An environment of thousands of resources, seeded in as few calls as moto allows: instances launched
    `launch_batch` per RunInstances call in a /18 subnet of their own (the network's /24 holds 250),
    groups of one instance each (moto launches every instance a group desires), services spread over
    `clusters` ECS clusters, and one database in five an Aurora cluster of one or two members, the rest
    PostgreSQL instances. One per network: the subnet's range is fixed."""
    tags = _env_tags(name)
    subnet_id = aws.client("ec2").create_subnet(
        VpcId=net.vpc_id, CidrBlock="10.40.64.0/18", AvailabilityZone=f"{aws.region}a"
    )["Subnet"]["SubnetId"]
    large_net = Network(net.vpc_id, subnet_id, net.security_group_id, net.base_image_id)
    instance_ids: list[str] = []
    while len(instance_ids) < instances:
        count = min(launch_batch, instances - len(instance_ids))
        launched = aws.client("ec2").run_instances(
            ImageId=net.base_image_id,
            MinCount=count,
            MaxCount=count,
            InstanceType="t3.small",
            SubnetId=subnet_id,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"{name}-worker"}, *tags]}
            ],
        )["Instances"]
        instance_ids.extend(i["InstanceId"] for i in launched)
    group_names = [
        _environment_group(aws, large_net, f"{name}-group-{n:03d}", tags, (1, 1, 2)) for n in range(groups)
    ]
    ecs = aws.client("ecs")
    cluster_arns = [
        ecs.create_cluster(clusterName=f"{name}-apps-{c}")["cluster"]["clusterArn"]
        for c in range(max(1, min(clusters, services)))
    ]
    service_refs = [(cluster_arns[n % len(cluster_arns)], f"{name}-svc-{n:03d}") for n in range(services)]
    for n, (cluster_arn, service) in enumerate(service_refs):
        _service(aws, cluster_arn, service, tags, 1 + n % 2)
    aurora = databases // 5
    database_keys = [_database(aws, f"{name}-db-{n:03d}", tags) for n in range(databases - aurora)]
    database_keys += [_aurora(aws, f"{name}-aurora-{n:02d}", tags, members=1 + n % 2) for n in range(aurora)]
    return LargeEnvironment(
        name=name,
        instances=instance_ids,
        groups=group_names,
        services=service_refs,
        databases=database_keys,
        clusters=cluster_arns,
        aurora_members=sum(1 + n % 2 for n in range(aurora)),
    )


@dataclass(frozen=True)
class BlueGreenApp:
    """An ECS service behind an ALB, ready for a blue/green deploy: the production listener forwards 100/0 to
    target groups `<name>-blue`/`<name>-green`, a test listener on port 8080 forwards to the green one, and
    the service (tagged to opt in) runs its tasks in the blue one."""

    cluster: str
    service: str
    task_definition: str
    listener_arn: str
    test_listener_arn: str
    blue_target_group: str
    green_target_group: str
    load_balancer_arn: str

    def request(self, **fields: Any) -> dict[str, Any]:
        """A blue/green request for this app; `fields` add to or replace its defaults."""
        return {
            "workflow": "ecs_blue_green",
            "cluster": self.cluster,
            "service": self.service,
            "listener_arn": self.listener_arn,
            "target_groups": [self.blue_target_group, self.green_target_group],
            **fields,
        }


def blue_green_app(aws: EmbeddedAws, name: str = "web", desired: int = 2, wait: bool = True) -> BlueGreenApp:
    ec2, elbv2, ecs = aws.client("ec2"), aws.client("elbv2"), aws.client("ecs")
    vpc_id = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.60.{i}.0/24", AvailabilityZone=f"{aws.region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    group_id = ec2.create_security_group(GroupName=name, Description=f"{name} tasks", VpcId=vpc_id)["GroupId"]
    balancer = elbv2.create_load_balancer(Name=name, Subnets=subnets, SecurityGroups=[group_id])[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    blue_tg, green_tg = (
        elbv2.create_target_group(
            Name=f"{name}-{colour}",
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc_id,
            TargetType="ip",
            HealthCheckPath="/health",
            HealthCheckIntervalSeconds=10,
            HealthyThresholdCount=3,
            UnhealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        for colour in ("blue", "green")
    )
    for arn in (blue_tg, green_tg):
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]
        )

    def listener(port: int, weights: list[tuple[str, int]]) -> str:
        return str(
            elbv2.create_listener(
                LoadBalancerArn=balancer,
                Protocol="HTTP",
                Port=port,
                DefaultActions=[
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights]
                        },
                    }
                ],
            )["Listeners"][0]["ListenerArn"]
        )

    production = listener(80, [(blue_tg, 100), (green_tg, 0)])
    test = listener(8080, [(green_tg, 1)])
    ecs.create_cluster(clusterName="prod")
    task_definition = ecs.register_task_definition(
        family=name,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "app",
                "image": f"123456789012.dkr.ecr.{aws.region}.amazonaws.com/{name}:1.0",
                "essential": True,
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="prod",
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=desired,
        launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": blue_tg, "containerName": "app", "containerPort": 8080}],
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [group_id],
                "assignPublicIp": "DISABLED",
            }
        },
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        tags=[{"key": OPT_IN["Key"], "value": OPT_IN["Value"]}, {"key": "team", "value": name}],
    )
    app = BlueGreenApp(
        cluster="prod",
        service=name,
        task_definition=task_definition,
        listener_arn=production,
        test_listener_arn=test,
        blue_target_group=blue_tg,
        green_target_group=green_tg,
        load_balancer_arn=balancer,
    )
    if wait:
        wait_until_steady(aws, "prod", name)
    return app


def wait_until_steady(aws: EmbeddedAws, cluster: str, service: str, timeout: float = 30) -> None:
    """Until the service has one COMPLETED deployment (its tasks running and healthy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = aws.client("ecs").describe_services(cluster=cluster, services=[service])["services"][0]
        deployments = found["deployments"]
        if len(deployments) == 1 and deployments[0].get("rolloutState") == "COMPLETED":
            return
        time.sleep(0.05)
    raise TimeoutError(f"ECS service {service} was not steady within {timeout} s")


@contextmanager
def health_endpoint() -> Iterator[str]:
    """A local stand-in for what a blue/green test listener answers: 200 from green's /health, 404 for any
    other path. Yields its base URL."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@dataclass(frozen=True)
class WeightedSite:
    """A name served from two regions by Route 53 weighted record sets: `www.<domain>` with sets `from_set`
    (weight 100) and `to_set` (weight 0), each a CNAME to its region's load balancer with a TTL of 60 s and an
    HTTPS health check; the hosted zone is tagged to opt in."""

    hosted_zone_id: str
    record_name: str
    from_set: str
    to_set: str
    health_checks: dict[str, str]  # set identifier -> health check id

    def request(self, **fields: Any) -> dict[str, Any]:
        """A cutover request for this site, to `to_set`; `fields` add to or replace its defaults."""
        return {
            "workflow": "dns_shift",
            "hosted_zone_id": self.hosted_zone_id,
            "record_name": self.record_name,
            "to": self.to_set,
            **fields,
        }


def weighted_site(
    aws: EmbeddedAws,
    domain: str = "example.com",
    from_set: str = "us-east-1",
    to_set: str = "eu-west-1",
    opted_in: bool = True,
    account: str | None = None,
) -> WeightedSite:
    route53 = aws.client("route53", account=account)
    zone = route53.create_hosted_zone(Name=domain, CallerReference=f"seed-{domain}-{time.monotonic_ns()}")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    if opted_in:
        route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=[OPT_IN])
    name = f"www.{domain}"
    health_checks = {}
    changes = []
    for set_id, weight in ((from_set, 100), (to_set, 0)):
        endpoint = f"web-{set_id}.elb.{domain}"
        health_checks[set_id] = route53.create_health_check(
            CallerReference=f"seed-{set_id}-{time.monotonic_ns()}",
            HealthCheckConfig={
                "Type": "HTTPS",
                "FullyQualifiedDomainName": endpoint,
                "Port": 443,
                "ResourcePath": "/health",
                "RequestInterval": 30,
                "FailureThreshold": 3,
            },
        )["HealthCheck"]["Id"]
        changes.append(
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": name,
                    "Type": "CNAME",
                    "SetIdentifier": set_id,
                    "Weight": weight,
                    "TTL": 60,
                    "ResourceRecords": [{"Value": endpoint}],
                    "HealthCheckId": health_checks[set_id],
                },
            }
        )
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return WeightedSite(zone_id, name, from_set, to_set, health_checks)


def baked_image(aws: EmbeddedAws, net: Network, group: str, days_old: int) -> str:
    """An image an earlier Opsflow bake made for `group` `days_old` days ago, available, with its snapshots:
    history moto cannot make (its images are created now), so its creation date is set in moto's backend."""
    from datetime import UTC, datetime, timedelta

    from moto.ec2.models import ec2_backends

    source = instance(aws, net, f"{group}-builder-{days_old}")
    tags = [{"Key": "opsflow:created-by", "Value": "opsflow"}, {"Key": "opsflow:asg", "Value": group}]
    image_id = aws.client("ec2").create_image(
        InstanceId=source,
        Name=f"{group}-{days_old}-days-old",
        NoReboot=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": tags},
            {"ResourceType": "snapshot", "Tags": tags},
        ],
    )["ImageId"]
    aws.client("ec2").terminate_instances(InstanceIds=[source])
    image = ec2_backends[aws.account_id][aws.region].amis[image_id]
    image.creation_date = datetime.now(UTC) - timedelta(days=days_old)
    image.state = "available"
    return str(image_id)


def builder_profile(aws: EmbeddedAws, name: str) -> str:
    """An instance profile for builders, its role trusted by EC2 (with AmazonSSMManagedInstanceCore, on AWS)."""
    trust = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
        '"ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
    )
    iam = aws.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def fleet(aws: EmbeddedAws, net: Network, name: str, size: int, environment: str = "prod") -> list[str]:
    """A group of `size` instances, each opted in and tagged with its environment, as a remediation rule
    acts on them. Returns the instance ids."""
    launch_template_group(aws, net, name, capacity=size)
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    instance_ids = [i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]]
    aws.client("ec2").create_tags(
        Resources=instance_ids, Tags=[OPT_IN, {"Key": ENVIRONMENT_TAG, "Value": environment}]
    )
    return instance_ids


def status_check_alarm(
    aws: EmbeddedAws, name: str, metric: str = "StatusCheckFailed", **dimension: str
) -> str:
    """An alarm on an EC2 status check metric (`InstanceId=...`, or a group's `AutoScalingGroupName=...`):
    2 minutes of a failed check put it in ALARM, as the EC2 User Guide's status check alarms do."""
    [(key, value)] = dimension.items()
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/EC2",
        MetricName=metric,
        Dimensions=[{"Name": key, "Value": value}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    return name


def service(aws: EmbeddedAws, cluster: str, name: str, desired: int = 2, environment: str = "prod") -> str:
    """An ECS service in `cluster` (created if need be), opted in and tagged with its environment, as a
    remediation rule acts on it. Returns "cluster/service"."""
    aws.client("ecs").create_cluster(clusterName=cluster)
    _service(aws, cluster, name, _env_tags(environment), desired)
    return f"{cluster}/{name}"


def failing_pipeline_run(
    aws: EmbeddedAws, pipeline: str, execution_id: str, cause: str
) -> list[dict[str, Any]]:
    """The six events (as PutEvents entries) of a CodePipeline run whose build action fails, in the order
    CodePipeline emits them, with the detail the User Guide's "Monitoring CodePipeline events" documents.
    CodePipeline itself sends them on real AWS; moto sends none."""
    import json

    def event(kind: str, state: str, **detail: Any) -> dict[str, Any]:
        return {
            "Source": "aws.codepipeline",
            "DetailType": f"CodePipeline {kind} Execution State Change",
            "Resources": [f"arn:aws:codepipeline:{aws.region}:{aws.account_id}:{pipeline}"],
            "Detail": json.dumps(
                {"pipeline": pipeline, "execution-id": execution_id, "state": state, "version": 3.0} | detail
            ),
        }

    action = {"stage": "Build", "action": "CodeBuild", "type": {"owner": "AWS", "provider": "CodeBuild"}}
    result = {
        "external-execution-url": f"https://{aws.region}.console.aws.amazon.com/codesuite/codebuild/projects/{pipeline}",
        "external-execution-summary": cause,
        "external-execution-id": f"{pipeline}:42",
        "error-code": "JobFailed",
    }
    return [
        event("Pipeline", "STARTED"),
        event("Stage", "STARTED", stage="Build"),
        event("Action", "STARTED", **action),
        event("Action", "FAILED", **action, **{"execution-result": result}),
        event("Stage", "FAILED", stage="Build"),
        event("Pipeline", "FAILED"),
    ]


def instance_retirement_scheduled(aws: EmbeddedAws | AccountRegion, group: str, environment: str) -> str:
    """A managed instance of `group` in `environment`, and the AWS Health event that schedules its
    retirement (events/health's documented example, pointed at it), sent on its account's default bus as
    AWS Health sends it. Returns the instance's id."""
    import json
    from pathlib import Path

    account = aws.account_id
    tags = [
        OPT_IN,
        {"Key": "opsflow:environment", "Value": environment},
        {"Key": "aws:autoscaling:groupName", "Value": group},
    ]
    instance_id = str(
        aws.client("ec2").run_instances(
            ImageId=base_image_id(aws),
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]["InstanceId"]
    )
    example = Path(__file__).resolve().parents[2] / "events/health/ec2_instance_retirement_scheduled.json"
    detail = json.loads(example.read_text())["detail"]
    arn = f"arn:aws:ec2:{aws.region}:{account}:instance/{instance_id}"
    detail |= {"affectedAccount": account, "eventRegion": aws.region}
    detail["affectedEntities"][0]["entityValue"] = arn
    aws.client("events").put_events(
        Entries=[
            {
                "Source": "aws.health",
                "DetailType": "AWS Health Event",
                "Resources": [arn],
                "Detail": json.dumps(detail),
            }
        ]
    )
    return instance_id
