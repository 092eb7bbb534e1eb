//! The API Gateway REST API in front of an HTTP app (`run_http`) with
//! `api_key = true`: every route proxied to the default function's alias,
//! an API key required on each, a usage plan with a quota and a throttle.
//! Plain CloudFormation resources, as the SAM transform would make them.
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html>
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-usage-plans.html>

use std::fmt::Write as _;

/// The API's resources, in a template's `Resources`.
pub(crate) fn resources(w: &mut String) {
    let _ = writeln!(w, "  Api:\n    Type: AWS::ApiGateway::RestApi\n    Properties:\n      Name: !Sub \"${{AWS::StackName}}\"");
    let _ = writeln!(w, "  ApiProxy:\n    Type: AWS::ApiGateway::Resource\n    Properties:\n      RestApiId: !Ref Api\n      ParentId: !GetAtt Api.RootResourceId\n      PathPart: \"{{proxy+}}\"");
    for (id, resource) in [("ApiRootMethod", "!GetAtt Api.RootResourceId"), ("ApiProxyMethod", "!Ref ApiProxy")] {
        let _ = writeln!(w, "  {id}:\n    Type: AWS::ApiGateway::Method\n    Properties:\n      RestApiId: !Ref Api\n      ResourceId: {resource}");
        let _ = writeln!(w, "      HttpMethod: ANY\n      AuthorizationType: NONE\n      ApiKeyRequired: true");
        let _ = writeln!(w, "      Integration:\n        Type: AWS_PROXY\n        IntegrationHttpMethod: POST");
        let _ = writeln!(w, "        Uri: !Sub \"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{WorkerAlias}}/invocations\"");
    }
    let _ = writeln!(w, "  ApiDeployment:\n    Type: AWS::ApiGateway::Deployment\n    DependsOn:\n      - ApiRootMethod\n      - ApiProxyMethod\n    Properties:\n      RestApiId: !Ref Api");
    let _ = writeln!(w, "  ApiStage:\n    Type: AWS::ApiGateway::Stage\n    Properties:\n      RestApiId: !Ref Api\n      DeploymentId: !Ref ApiDeployment\n      StageName: live");
    let _ = writeln!(w, "  ApiApiKey:\n    Type: AWS::ApiGateway::ApiKey\n    Properties:\n      Enabled: true");
    let _ = writeln!(w, "  ApiUsagePlan:\n    Type: AWS::ApiGateway::UsagePlan\n    Properties:\n      ApiStages:\n        - ApiId: !Ref Api\n          Stage: !Ref ApiStage");
    let _ = writeln!(w, "      Quota:\n        Limit: 100000\n        Period: MONTH\n      Throttle:\n        BurstLimit: 50\n        RateLimit: 20");
    let _ = writeln!(w, "  ApiUsagePlanKey:\n    Type: AWS::ApiGateway::UsagePlanKey\n    Properties:\n      KeyId: !Ref ApiApiKey\n      KeyType: API_KEY\n      UsagePlanId: !Ref ApiUsagePlan");
    // API Gateway may invoke the alias, from this API only.
    let _ = writeln!(w, "  ApiInvokes:\n    Type: AWS::Lambda::Permission\n    Properties:\n      Action: lambda:InvokeFunction\n      FunctionName: !Ref WorkerAlias\n      Principal: apigateway.amazonaws.com");
    let _ = writeln!(w, "      SourceArn: !Sub \"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{Api}}/*\"");
}

/// The API's outputs: its URL and its key's id.
pub(crate) fn outputs(w: &mut String) {
    let _ = writeln!(w, "  Url:\n    Value: !Sub \"https://${{Api}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/${{ApiStage}}/\"");
    let _ = writeln!(
        w,
        "  ApiKey:\n    Description: {}\n    Value: !Ref ApiApiKey",
        serde_json::to_string("the API key's id; its value: aws apigateway get-api-key --include-value --api-key ID").unwrap_or_default()
    );
}
