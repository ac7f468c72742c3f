//! Runs a query and a prepared statement (bound twice) through arrow-flight's
//! Flight SQL client and prints the rows as one JSON object on stdout.
//! Usage: flightdeck-bi-rust http://127.0.0.1:PORT

use std::error::Error;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::FlightInfo;
use futures::TryStreamExt;
use std::sync::Arc;
use tonic::transport::{Channel, Endpoint};

const QUERY: &str = "SELECT page_url, view_count FROM va_pageview_aggregate ORDER BY page_url";
const PREPARED: &str =
    "SELECT page_url, view_count FROM va_pageview_aggregate WHERE page_url = ? ORDER BY page_url";

type Client = FlightSqlServiceClient<Channel>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let uri = std::env::args().nth(1).ok_or("usage: flightdeck-bi-rust URI")?;
    let channel = Endpoint::from_shared(uri)?.connect().await?;
    let mut client = FlightSqlServiceClient::new(channel);

    let info = client.execute(QUERY.to_string(), None).await?;
    let query = rows_json(&mut client, info).await?;

    let mut statement = client.prepare(PREPARED.to_string(), None).await?;
    let mut prepared = Vec::new();
    for page in ["/b", "/a"] {
        // The same statement re-executed with a new value, as a BI tool does.
        let column: ArrayRef = Arc::new(StringArray::from(vec![page]));
        statement.set_parameters(RecordBatch::try_from_iter([("$1", column)])?)?;
        let info = statement.execute().await?;
        prepared.push(rows_json(&mut client, info).await?);
    }
    statement.close().await?;

    println!(
        "{{\"query\": {query}, \"prepared\": [{}]}}",
        prepared.join(", ")
    );
    Ok(())
}

/// Every endpoint's rows, read on the client's own channel, as a JSON array of objects.
async fn rows_json(client: &mut Client, info: FlightInfo) -> Result<String, Box<dyn Error>> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let stream = client.do_get(ticket).await?;
        batches.extend(stream.try_collect::<Vec<_>>().await?);
    }
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    writer.write_batches(&batches.iter().collect::<Vec<_>>())?;
    writer.finish()?;
    let text = String::from_utf8(writer.into_inner())?;
    Ok(if text.is_empty() { "[]".to_string() } else { text })
}
