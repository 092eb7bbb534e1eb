#!/usr/bin/env python3
"""Check that two stacks of one template can live in one account: every
resource name the template sets explicitly must carry the stack name
(`${AWS::StackName}`); anything else is named by CloudFormation, uniquely.
The templates are plain CloudFormation (no transform), so what is checked
here is what CloudFormation creates.

Usage: PYTHONPATH=.pydeps python3 scripts/template-names.py TEMPLATE...
Exit 0 when no name can collide; 1 otherwise.
"""
import json
import sys

import yaml

# Properties that set a resource's physical name, by resource type.
NAME_PROPERTIES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::ApiGateway::RestApi": "Name",
    "AWS::ApiGateway::ApiKey": "Name",
    "AWS::ApiGateway::UsagePlan": "UsagePlanName",
}


def cfn_loader():
    """A YAML loader that keeps CloudFormation's short-form tags (!Sub, !Ref, !GetAtt) as their long forms."""

    class Loader(yaml.SafeLoader):
        pass

    def tag(name):
        def construct(loader, node):
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if name == "GetAtt":
                    value = value.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            return {"Ref": value} if name == "Ref" else {"Fn::" + name: value}

        return construct

    for name in ["Ref", "Sub", "GetAtt", "Join", "Select", "Split", "If", "Equals", "Not", "FindInMap", "ImportValue"]:
        Loader.add_constructor("!" + name, tag(name))
    return Loader


def carries_stack_name(value):
    return "AWS::StackName" in json.dumps(value)


def main(paths):
    ok = True
    for path in paths:
        with open(path) as f:
            template = yaml.load(f, Loader=cfn_loader())
        if "Transform" in template:
            ok = False
            print(f"{path}: has a Transform ({template['Transform']}): a transform runs only on AWS's servers")
        resources = template.get("Resources", {})
        clashes = []
        for logical, resource in sorted(resources.items()):
            prop = NAME_PROPERTIES.get(resource.get("Type"))
            value = (resource.get("Properties") or {}).get(prop) if prop else None
            if value is not None and not carries_stack_name(value):
                clashes.append(f"{logical} ({resource['Type']}) is named {json.dumps(value)}, the same in every stack")
        for clash in clashes:
            print(f"{path}: {clash}")
        ok = ok and not clashes
        kinds = sorted({r.get("Type") for r in resources.values()})
        print(f"{path}: {len(resources)} resources ({', '.join(kinds)}); {'no name collides between two stacks' if not clashes else 'names collide'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
