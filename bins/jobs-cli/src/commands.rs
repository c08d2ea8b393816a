//! What each command does, through `jobs-client`.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use jobs_client::{ClaimOptions, Client, CreateOptions, EventsOptions, StreamMessage};
use jobs_domain::{
    BoundedMetadata, CallbackUrl, Label, Limit, ListDefaults, ListQuery, NewJob, Order,
    TimeoutSeconds, ValidationError, DEFAULT_MAX_METADATA_BYTES,
};

use crate::args::{ClaimArgs, Cli, Command, CreateArgs, EventsArgs, Format, ListArgs};
use crate::{output, watch, Failure, Outcome};

/// Runs the command of the command line.
pub async fn run(cli: Cli) -> Result<Outcome, Failure> {
    let token = cli
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::Usage("no token: set JOBS_TOKEN (or pass --token)".to_owned()))?;
    let client = Client::new(&cli.url, token)?;
    let format = cli.output;
    match cli.command {
        Command::List(args) => list(&client, args, format).await,
        Command::Get { id } => single(client.get(&id).await?, format),
        Command::Create(args) => create(&client, args, format).await,
        Command::Cancel { id } => single(client.cancel(&id).await?, format),
        Command::Delete { id } => single(client.delete(&id).await?, format),
        Command::Watch { id } => watch::watch(&client, &id, format).await,
        Command::Events(args) => events(&client, args, format).await,
        Command::Claim(args) => claim(&client, args, format).await,
    }
}

fn single(job: jobs_client::Job, format: Format) -> Result<Outcome, Failure> {
    output::job(&job, format)?;
    Ok(Outcome::Done)
}

fn label(field: &str, value: Option<String>) -> Result<Option<String>, ValidationError> {
    Ok(Label::parse_opt(field, value)?.map(Label::into_string))
}

async fn list(client: &Client, args: ListArgs, format: Format) -> Result<Outcome, Failure> {
    let mut query = ListQuery::new(ListDefaults::LIST);
    if !args.status.is_empty() {
        query.statuses = Some(args.status.into_iter().collect());
    }
    if args.active {
        let active = |s: &jobs_domain::JobStatus| s.is_active();
        query.statuses = Some(match query.statuses.take() {
            Some(set) => set.into_iter().filter(active).collect(),
            None => jobs_domain::JobStatus::ACTIVE.into_iter().collect(),
        });
    }
    query.job_type = args.job_type;
    query.source_id = label("folder_id", args.folder_id)?;
    query.agent_id = label("agent_id", args.agent_id)?;
    query.project_id = label("project", args.project)?;
    if args.oldest_first {
        query.order = Order::Asc;
    }
    let (page, shown) =
        if args.all { (Limit::MAX, usize::MAX) } else { (args.limit, usize::from(args.limit)) };
    query.limit = Limit::new(i64::from(page))?;
    let jobs: Vec<_> = client.list(&query).take(shown).try_collect().await?;
    output::jobs(&jobs, format)?;
    Ok(Outcome::Done)
}

async fn create(client: &Client, args: CreateArgs, format: Format) -> Result<Outcome, Failure> {
    let mut new = NewJob::default().with_background(args.background);
    if let Some(job_type) = args.job_type {
        new = new.with_job_type(job_type);
    }
    if let Some(text) = args.metadata {
        let metadata = match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(Failure::Usage("--metadata: must be a JSON object".to_owned())),
        };
        new = new.with_metadata(BoundedMetadata::new(metadata, DEFAULT_MAX_METADATA_BYTES)?);
    }
    new = new
        .with_agent_id(Label::parse_opt("agent_id", args.agent_id)?)
        .with_source_id(Label::parse_opt("folder_id", args.folder_id)?)
        .with_callback_url(args.callback_url.map(CallbackUrl::parse).transpose()?)
        .with_timeout_seconds(args.timeout_seconds.map(TimeoutSeconds::new).transpose()?);
    let options = CreateOptions {
        submit: args.submit,
        project_id: args.project,
        idempotency_key: args.idempotency_key,
    };
    single(client.create_with(&new, options).await?, format)
}

async fn events(client: &Client, args: EventsArgs, format: Format) -> Result<Outcome, Failure> {
    let options = EventsOptions {
        last_event_id: args.last_event_id,
        job_ids: args.job_id,
        job_type: args.job_type,
        agent_id: args.agent_id,
        types: args.types,
    };
    let mut stream = Box::pin(client.events(options).await?);
    let mut seen = 0;
    while args.count.is_none_or(|count| seen < count) {
        match stream.next().await {
            None => break,
            Some(Err(err)) => return Err(err.into()),
            Some(Ok(StreamMessage::Reset { reason })) => {
                eprintln!("jobs: reset: {reason}; reload what you need");
            }
            Some(Ok(StreamMessage::Event(change))) => {
                output::event(&change, format)?;
                seen += 1;
            }
        }
    }
    Ok(Outcome::Done)
}

async fn claim(client: &Client, args: ClaimArgs, format: Format) -> Result<Outcome, Failure> {
    let options = ClaimOptions {
        job_type: args.job_type,
        agent_id: label("agent_id", args.agent_id)?,
        folder_id: label("folder_id", args.folder_id)?,
        lease_seconds: args.lease_seconds,
        wait: args.wait.map(Duration::from_secs),
    };
    match client.claim(&options).await? {
        Some(job) => single(job, format),
        None => {
            if format == Format::Json {
                output::print("null")?;
            } else {
                eprintln!("jobs: nothing to claim");
            }
            Ok(Outcome::Unsuccessful)
        }
    }
}
