//! The AWS side of a stage: its clients, built once from the stage's
//! region and profile (and aws-config's chain: `AWS_ENDPOINT_URL` points
//! them at moto or another implementation), the credentials checked before
//! anything is built or sent, and the code's upload to the stage's bucket.

use aws_sdk_lambda::config::ProvideCredentials as _;
use aws_sdk_s3::error::ProvideErrorMetadata as _;

use super::settings::Stage;
use crate::Problem;
use crate::deployed::sdk_error;

/// The clients a stage's commands use.
pub(crate) struct Aws {
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) cfn: aws_sdk_cloudformation::Client,
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    /// The region the stage deploys to.
    pub(crate) region: String,
}

impl Aws {
    /// The clients of `stage`, once its region and credentials are known:
    /// a stage with neither is refused before anything is done.
    pub(crate) async fn connect(stage: &Stage) -> Result<Aws, Problem> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &stage.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &stage.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        let from = match &stage.profile {
            Some(p) => format!("profile `{p}` (stage `{}`)", stage.name),
            None => "aws-config's chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws, SSO, the instance's role)".to_owned(),
        };
        let Some(region) = sdk.region().map(ToString::to_string) else {
            return Err(Problem(format!(
                "no AWS region for stage `{}`: set `region` in its [stages.{}] of Tasks.toml, or AWS_REGION",
                stage.name, stage.name
            )));
        };
        let missing = || {
            Problem(format!(
                "no AWS credentials from {from}: run `aws configure` (or `aws sso login`), set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set `profile` in the stage; nothing was built or deployed"
            ))
        };
        let provider = sdk.credentials_provider().ok_or_else(missing)?;
        if let Err(e) = provider.provide_credentials().await {
            let Problem(why) = missing();
            return Err(Problem(format!("{why} ({e})")));
        }
        let s3 = s3_client(&sdk);
        Ok(Aws {
            cfn: aws_sdk_cloudformation::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            s3,
            sdk,
            region,
        })
    }

    /// Put `zip` in the stage's bucket under `key`, creating the bucket when
    /// it is missing (like Zappa's `s3_bucket`). The key is the zip's hash,
    /// so a zip already there is the same bytes and is not sent again.
    /// Returns whether it was sent.
    pub(crate) async fn upload(&self, bucket: &str, key: &str, zip: Vec<u8>) -> Result<bool, Problem> {
        match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(aws_sdk_s3::operation::head_bucket::HeadBucketError::is_not_found) => {
                let mut create = self.s3.create_bucket().bucket(bucket);
                // us-east-1 takes no location constraint; every other region needs its own.
                // https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html
                if self.region != "us-east-1" {
                    let constraint = aws_sdk_s3::types::BucketLocationConstraint::from(self.region.as_str());
                    create = create.create_bucket_configuration(aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(constraint).build());
                }
                create.send().await.map_err(|e| Problem(format!("cannot create bucket `{bucket}` for the code: {}", sdk_error(&e))))?;
                eprintln!("created bucket {bucket} ({})", self.region);
            }
            Err(e) => {
                return Err(Problem(format!("cannot use bucket `{bucket}` for the code (another account's, in another region than {}, or no access): {}", self.region, sdk_error(&e))));
            }
        }
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.code() == Some("NotFound") || e.as_service_error().is_some_and(aws_sdk_s3::operation::head_object::HeadObjectError::is_not_found) => {}
            Err(e) => return Err(Problem(format!("cannot read s3://{bucket}/{key}: {}", sdk_error(&e)))),
        }
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(zip.into())
            .send()
            .await
            .map_err(|e| Problem(format!("cannot upload the code to s3://{bucket}/{key}: {}", sdk_error(&e))))?;
        Ok(true)
    }
}

/// The stage's S3 client. An endpoint of its own (moto, MinIO, LocalStack)
/// serves buckets by path, not as a host name under it.
pub(crate) fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build())
}
