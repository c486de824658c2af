//! What your work can use: the [`Context`] `handle` is given, built once per cold start,
//! and the [`Setup`] your settings are read from.

use std::str::FromStr;
use std::time::Duration;

use super::config::{Clients, WorkerConfig};
use crate::adapters::SdkConfig;
use crate::adapters::backend::{Objects, Queue, Table};
use crate::adapters::dynamo::DynamoLedger;
use crate::adapters::s3::S3Bucket;
use crate::adapters::sqs::SqsQueue;
use crate::config::{ConfigError, Env};
use crate::error::BoxError;
use crate::files::Files;
use crate::ingest::Ingest;
use crate::ports::Ledger;
use crate::prediction::{Prediction, PredictionId};
use crate::records::Records;
use crate::steps::Steps;
use crate::wriftai::{Webhook, WriftAi};

/// What your work can use, built once per cold start and given to every call of your
/// `handle` (see [`worker::serve`](crate::worker::serve)): the stack's table (through
/// [`steps`](Self::steps) and [`records`](Self::records)), its bucket
/// ([`files`](Self::files)), WriftAI ([`wriftai`](Self::wriftai)), an HTTP client for
/// the services you call ([`http`](Self::http)), and your own settings `S`
/// ([`settings`](Self::settings)), read once by the function you gave `serve`.
///
/// In a Lambda it is on DynamoDB, SQS and S3. In your tests,
/// [`Context::in_memory`] builds the same context in memory (feature `test-util`).
pub struct Context<S = ()> {
    pub(crate) ingest: Ingest<Table, Queue>,
    pub(crate) wriftai: WriftAi,
    pub(crate) webhook: Option<Webhook>,
    pub(crate) files: Option<Files>,
    http: reqwest::Client,
    settings: S,
}

/// The HTTP client of a context: short timeouts, since a step that hangs holds its
/// whole batch; and no redirect followed, since a request answered with a redirect may
/// have had its effect where it first arrived, whatever the next hop answers
/// ([`SendStep`](crate::SendStep) tells it as such).
fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

impl<S> Context<S> {
    /// The context on the stack's table, queue and bucket, from the worker's
    /// configuration, once per cold start.
    pub(crate) fn on_aws(
        clients: &Clients,
        config: &WorkerConfig,
        table: DynamoLedger,
        settings: S,
    ) -> Result<Self, BoxError> {
        let files = match &config.output_bucket {
            Some(bucket) => Some(Files::new(
                Objects::Aws(S3Bucket::new(&clients.aws, bucket.clone(), config.s3_path_style)),
                config.url_policy.clone(),
                config.download_timeout,
                config.file_limits.clone(),
            )?),
            None => None,
        };
        let queue = SqsQueue::from_config(&clients.aws, &config.ingest.queue_url);
        let ingest = Ingest::new(table.into(), queue.into(), config.ingest.act_on.clone(), config.ingest.event_ttl);
        Ok(Self {
            ingest,
            wriftai: clients.api.clone(),
            webhook: clients.webhook.clone(),
            files,
            http: http_client()?,
            settings,
        })
    }

    /// Your settings, as the function you gave [`worker::serve`](crate::worker::serve)
    /// read them at cold start.
    pub fn settings(&self) -> &S {
        &self.settings
    }

    /// The steps of `prediction`'s work, each run at most once per (prediction, status,
    /// name): see [`Steps`].
    pub fn steps<'a>(&'a self, prediction: &'a Prediction) -> Steps<'a> {
        Steps::new(self.records(), prediction)
    }

    /// The work's named records, per prediction, of any size: see [`Records`].
    pub fn records(&self) -> Records<'_> {
        Records::new(self.ingest.ledger(), self.files.as_ref().map(|files| &files.objects))
    }

    /// The stack's bucket and the fetching of output files (`OUTPUT_BUCKET`); `None`
    /// when the stack has no bucket.
    pub fn files(&self) -> Option<&Files> {
        self.files.as_ref()
    }

    /// The WriftAI API, with the stack's token.
    pub fn wriftai(&self) -> &WriftAi {
        &self.wriftai
    }

    /// The webhook a prediction you create should carry, so its work runs here in turn:
    /// the receiver's URL (`WRIFTAI_WEBHOOK_URL`) and the secret WriftAI signs with.
    /// `None` when the stack sets no URL.
    pub fn webhook(&self) -> Option<&Webhook> {
        self.webhook.as_ref()
    }

    /// An HTTP client for the services your work calls (10 s per request, 5 s to
    /// connect; a redirect is answered, not followed). Never for a URL that came in a
    /// webhook body: [`files`](Self::files) fetches those, under their checks. In a step,
    /// send with [`SendStep::send_step`](crate::SendStep::send_step), which says whether a
    /// failed request may have had its effect.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Records `id` as a prediction of ours, so the receiver accepts its webhooks and
    /// the reconciler watches it. Do it for every prediction your work creates, as soon
    /// as WriftAI gives its ID. `true` when it was new; registering again is harmless.
    /// A prediction `hooks forget` erased is not registered again (`false`): a replay of
    /// the work that created it brings nothing of it back.
    pub async fn register(&self, id: PredictionId) -> Result<bool, crate::Error> {
        if self.ingest.ledger().forgotten(id).await? {
            return Ok(false);
        }
        self.ingest.ledger().register(id, crate::clock::now()).await
    }
}

/// Where your settings come from, at cold start: the function's environment, and the
/// AWS configuration to build clients of other AWS services from. Given to the function
/// that reads your settings (see [`worker::serve`](crate::worker::serve)).
pub struct Setup {
    env: Env,
    aws: SdkConfig,
}

impl Setup {
    pub(crate) fn new(env: Env, aws: SdkConfig) -> Self {
        Self { env, aws }
    }

    /// The variable `name`, if it is set and not empty.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env.optional(name)
    }

    /// The variable `name`; an error naming it when it is not set.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.env.required(name)
    }

    /// The variable `name` parsed as a `T`, or `default` when it is not set; an error
    /// naming it when it does not parse.
    pub fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.env.parsed(name, default)
    }

    /// The AWS configuration the worker's own clients use (region, credentials,
    /// endpoints, timeouts): build a client of another service from it, as
    /// `aws_sdk_sns::Client::new(setup.aws())`.
    pub fn aws(&self) -> &SdkConfig {
        &self.aws
    }
}

#[cfg(any(test, feature = "test-util"))]
mod in_memory {
    use std::time::Duration;

    use super::{Context, Setup, http_client};
    use crate::adapters::SdkConfig;
    use crate::adapters::backend::{Objects, Queue, Table};
    use crate::adapters::memory::{MemoryBucket, MemoryLedger, MemoryQueue};
    use crate::config::{ActOn, Env};
    use crate::files::fetch::UrlPolicy;
    use crate::files::{FileLimits, Files};
    use crate::ingest::Ingest;
    use crate::wriftai::{Webhook, WriftAi};

    impl<S> Context<S> {
        /// The context your `handle` gets, on in-memory adapters: the table, the work
        /// queue, the bucket and WriftAI ([`WriftAi::in_memory`]) are in this process.
        /// What your work sends with [`http`](Context::http), and the output files
        /// [`files`](Context::files) fetches, still go over the network. The stack's
        /// defaults hold (the terminal statuses are acted on; output files are fetched
        /// over HTTPS only). Feature `test-util`.
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// use wriftai_hooks::Context;
        /// use wriftai_hooks::testing::prediction;
        ///
        /// let ctx = Context::in_memory(());
        /// let succeeded = prediction("succeeded").output("hello").build();
        /// ctx.records().store(succeeded.id, "result", &"hello".into()).await.unwrap();
        /// assert_eq!(ctx.records().load(succeeded.id, "result").await.unwrap(), Some("hello".into()));
        /// # }
        /// ```
        pub fn in_memory(settings: S) -> Self {
            let ingest = Ingest::new(
                Table::from(MemoryLedger::default()),
                MemoryQueue::default().into(),
                ActOn::terminal(),
                Duration::from_secs(30 * 86_400),
            );
            let limits = FileLimits { per_file: 512 << 20, per_prediction: 2 << 30, files: 100 };
            let files = Files::new(
                Objects::from(MemoryBucket::default()),
                UrlPolicy::default(),
                Duration::from_secs(10),
                limits,
            )
            .expect("an HTTP client with timeouts builds");
            Self {
                ingest,
                wriftai: WriftAi::in_memory(),
                webhook: None,
                files: Some(files),
                http: http_client().expect("an HTTP client with timeouts builds"),
                settings,
            }
        }

        /// The context on an in-memory stack another part of the test holds too: its
        /// table and queue (`ingest`), WriftAI, and bucket. For this repository's
        /// simulation. Not part of the API's promise.
        #[doc(hidden)]
        pub fn simulated(
            ingest: Ingest<Table, Queue>,
            wriftai: WriftAi,
            bucket: std::sync::Arc<MemoryBucket>,
            webhook: Option<Webhook>,
            settings: S,
        ) -> Self {
            let limits = FileLimits { per_file: 512 << 20, per_prediction: 2 << 30, files: 100 };
            let files = Files::new(Objects::Memory(bucket), UrlPolicy::default(), Duration::from_secs(10), limits)
                .expect("an HTTP client with timeouts builds");
            Self {
                ingest,
                wriftai,
                webhook,
                files: Some(files),
                http: http_client().expect("an HTTP client with timeouts builds"),
                settings,
            }
        }

        /// The same context, on `wriftai` (a local simulator, say) instead of the
        /// in-memory one.
        pub fn with_wriftai(self, wriftai: WriftAi) -> Self {
            Self { wriftai, ..self }
        }

        /// The same context, whose output files may also be fetched over plain HTTP
        /// from `host` (`127.0.0.1:8080`: a server of the test's own), as
        /// `OUTPUT_URL_ALLOW_HTTP=true` and `OUTPUT_URL_HOSTS` allow on a stack.
        pub fn fetching_from(self, host: &str) -> Self {
            let files = self.files.map(|files| {
                let policy = UrlPolicy::new(true, Some(host)).expect("a host[:port] to fetch from");
                Files::new(files.objects, policy, Duration::from_secs(10), files.limits)
                    .expect("an HTTP client with timeouts builds")
            });
            Self { files, ..self }
        }

        /// The same context without a bucket, as a stack without `OUTPUT_BUCKET`.
        pub fn without_files(self) -> Self {
            Self { files: None, ..self }
        }

        /// The in-memory table, for a test to look into. Not part of the API's promise.
        #[doc(hidden)]
        pub fn memory_table(&self) -> &MemoryLedger {
            self.ingest.ledger().memory().expect("an in-memory context")
        }

        /// The in-memory bucket, for a test to look into. Not part of the API's promise.
        #[doc(hidden)]
        pub fn memory_bucket(&self) -> &MemoryBucket {
            self.files.as_ref().and_then(|files| files.objects.memory()).expect("an in-memory context with a bucket")
        }

        /// The in-memory work queue, for a test to look into. Not part of the API's
        /// promise.
        #[doc(hidden)]
        pub fn memory_queue(&self) -> &MemoryQueue {
            self.ingest.queue().memory().expect("an in-memory context")
        }
    }

    impl Setup {
        /// A setup of these variables, and an AWS configuration that reaches nothing:
        /// for a test of the function that reads your settings. Feature `test-util`.
        pub fn of(pairs: &[(&str, &str)]) -> Self {
            let aws = SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
            Setup::new(Env::of(pairs), aws)
        }
    }
}
