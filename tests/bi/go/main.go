// A Flight SQL client as Go programs and Grafana's Flight SQL data source embed it:
// arrow-go's flightsql.Client. It bulk-ingests page views, runs a query, a prepared
// statement re-executed with new parameters, GetTables with schemas, GetSqlInfo and
// the session options, and prints one JSON object that tests/bi/test_go.py compares
// with a fresh Python query.
//
// Usage: flightdeck-bi-go HOST:PORT
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	query = "SELECT page_url, view_count, unique_visitors FROM va_pageview_aggregate " +
		"ORDER BY page_url"
	prepared = "SELECT count(*) AS n FROM va_pageview_event WHERE session_id = ? " +
		"AND recorded_at >= ?"
)

var base = time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC)

type rows = []map[string]any

func main() {
	if len(os.Args) != 2 {
		fail(fmt.Errorf("usage: flightdeck-bi-go HOST:PORT"))
	}
	ctx := context.Background()
	client, err := flightsql.NewClient(os.Args[1], nil,
		[]flight.ClientMiddleware{flight.NewClientCookieMiddleware()},
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	defer client.Close()

	out := map[string]any{}
	out["ingested"] = ingest(ctx, client)
	out["query"] = run(ctx, client, must(client.Execute(ctx, query)))
	out["prepared"] = preparedRuns(ctx, client)
	out["tables"] = tables(ctx, client)
	out["sql_info"] = sqlInfo(ctx, client)
	out["session"] = session(ctx, client)
	check(json.NewEncoder(os.Stdout).Encode(out))
}

// ingest appends six page views, go-e0..go-e5, through CommandStatementIngest.
func ingest(ctx context.Context, client *flightsql.Client) int64 {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String},
		{Name: "session_id", Type: arrow.BinaryTypes.String},
		{Name: "page_url", Type: arrow.BinaryTypes.String},
		{Name: "recorded_at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
	builder := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer builder.Release()
	for i := 0; i < 6; i++ {
		builder.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("go-e%d", i))
		builder.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("go-s%d", i%2))
		builder.Field(2).(*array.StringBuilder).Append([]string{"/go/a", "/go/b", "/go/a"}[i%3])
		at, err := arrow.TimestampFromTime(base.Add(time.Duration(i)*time.Minute), arrow.Microsecond)
		check(err)
		builder.Field(3).(*array.TimestampBuilder).Append(at)
	}
	batch := builder.NewRecordBatch()
	defer batch.Release()
	reader, err := array.NewRecordReader(schema, []arrow.RecordBatch{batch})
	check(err)
	defer reader.Release()
	options := &flightsql.ExecuteIngestOpts{
		Table: "tb_pageview_event",
		TableDefinitionOptions: &flightsql.TableDefinitionOptions{
			IfExists: flightsql.TableDefinitionOptionsTableExistsOptionAppend,
		},
	}
	return must(client.ExecuteIngest(ctx, reader, options))
}

// preparedRuns binds a string and a timestamp, then re-executes with new values.
func preparedRuns(ctx context.Context, client *flightsql.Client) []rows {
	statement := must(client.Prepare(ctx, prepared))
	defer statement.Close(ctx)
	var results []rows
	for _, bound := range []struct {
		session string
		after   time.Duration
	}{{"go-s0", 0}, {"go-s1", 2 * time.Minute}} {
		parameters := parameterBatch(bound.session, base.Add(bound.after))
		statement.SetParameters(parameters)
		results = append(results, run(ctx, client, must(statement.Execute(ctx))))
		parameters.Release()
	}
	return results
}

func parameterBatch(session string, after time.Time) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "$1", Type: arrow.BinaryTypes.String},
		{Name: "$2", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
	builder := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer builder.Release()
	builder.Field(0).(*array.StringBuilder).Append(session)
	at, err := arrow.TimestampFromTime(after, arrow.Microsecond)
	check(err)
	builder.Field(1).(*array.TimestampBuilder).Append(at)
	return builder.NewRecordBatch()
}

// tables lists va_ views with the column names of the schema each carries.
func tables(ctx context.Context, client *flightsql.Client) map[string][]string {
	info := must(client.GetTables(ctx, &flightsql.GetTablesOpts{IncludeSchema: true}))
	found := map[string][]string{}
	for _, row := range run(ctx, client, info) {
		raw, err := decodeBinary(row["table_schema"])
		check(err)
		schema, err := flight.DeserializeSchema(raw, memory.DefaultAllocator)
		check(err)
		names := []string{}
		for _, field := range schema.Fields() {
			names = append(names, field.Name)
		}
		found[row["table_name"].(string)] = names
	}
	return found
}

func sqlInfo(ctx context.Context, client *flightsql.Client) map[string]any {
	wanted := []flightsql.SqlInfo{
		flightsql.SqlInfoFlightSqlServerName,
		flightsql.SqlInfoFlightSqlServerReadOnly,
	}
	info := must(client.GetSqlInfo(ctx, wanted))
	found := map[string]any{}
	for _, row := range run(ctx, client, info) {
		// The value is a dense union: its JSON form is [type code, value].
		found[fmt.Sprint(row["info_name"])] = row["value"]
	}
	return found
}

// session reads the session's catalog and schema, sets the schema to what it read,
// and reports the error a schema that GetDbSchemas does not list gets.
func session(ctx context.Context, client *flightsql.Client) map[string]any {
	got := must(client.GetSessionOptions(ctx, &flight.GetSessionOptionsRequest{}))
	schema := got.GetSessionOptions()["schema"].GetStringValue()
	set := func(value string) string {
		values := must(flight.NewSessionOptionValues(map[string]any{"schema": value}))
		result := must(client.SetSessionOptions(ctx,
			&flight.SetSessionOptionsRequest{SessionOptions: values}))
		if err, refused := result.GetErrors()["schema"]; refused {
			return err.GetValue().String()
		}
		return "ok"
	}
	closed := must(client.CloseSession(ctx, &flight.CloseSessionRequest{}))
	return map[string]any{
		"catalog":   got.GetSessionOptions()["catalog"].GetStringValue(),
		"schema":    schema,
		"set_same":  set(schema),
		"set_other": set("no_such_schema"),
		"close":     closed.GetStatus().String(),
	}
}

// run reads every endpoint of info on the client's own channel, as rows.
func run(ctx context.Context, client *flightsql.Client, info *flight.FlightInfo) rows {
	found := rows{}
	for _, endpoint := range info.Endpoint {
		reader := must(client.DoGet(ctx, endpoint.Ticket))
		for reader.Next() {
			found = append(found, batchRows(reader.RecordBatch())...)
		}
		check(reader.Err())
		reader.Release()
	}
	return found
}

func batchRows(batch arrow.RecordBatch) rows {
	found := rows{}
	for i := 0; i < int(batch.NumRows()); i++ {
		row := map[string]any{}
		for j, column := range batch.Columns() {
			row[batch.ColumnName(j)] = column.GetOneForMarshal(i)
		}
		found = append(found, row)
	}
	return found
}

func decodeBinary(value any) ([]byte, error) {
	raw, ok := value.([]byte)
	if !ok {
		return nil, fmt.Errorf("table_schema is %T, not binary", value)
	}
	return raw, nil
}

func must[T any](value T, err error) T {
	check(err)
	return value
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "flightdeck-bi-go:", err)
	os.Exit(1)
}
