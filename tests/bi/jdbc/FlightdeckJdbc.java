// What a BI tool (DBeaver, DataGrip, Tableau) does through the Arrow Flight SQL JDBC
// driver on connect and on use, against a running flightdeck server.
//
// Usage: java --add-opens=java.base/java.nio=ALL-UNNAMED -cp flight-sql-jdbc-driver.jar \
//          FlightdeckJdbc.java HOST PORT USER PASSWORD CA_PEM LONG_SQL
// Prints one JSON object per line, {"check": NAME, ...}; tests/bi/test_jdbc.py judges them.
// A check that throws prints {"check": NAME, "error": MESSAGE} and the run goes on, so one
// broken call shows as one failed assertion, not as a missing report.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.Date;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class FlightdeckJdbc {
    interface Check {
        Map<String, Object> run() throws Exception;
    }

    static String host, port, user, password, caPem, longSql;

    public static void main(String[] args) throws Exception {
        host = args[0];
        port = args[1];
        user = args[2];
        password = args[3];
        caPem = args[4];
        longSql = args[5];
        check("wrong_password", () -> refusedConnect(url(user, "not-" + password, true)));
        check("untrusted_server", () -> refusedConnect(url(user, password, false)));
        Connection conn = DriverManager.getConnection(url(user, password, true));
        try {
            DatabaseMetaData meta = conn.getMetaData();
            check("product", () -> product(meta));
            check("sql_info", () -> sqlInfo(meta));
            check("catalogs", () -> rows(meta.getCatalogs(), "TABLE_CAT"));
            check("schemas", () -> rows(meta.getSchemas(), "TABLE_SCHEM", "TABLE_CATALOG"));
            check("table_types", () -> rows(meta.getTableTypes(), "TABLE_TYPE"));
            check("tables_all", () -> tables(meta, null, "%", null));
            check("tables_pattern", () -> tables(meta, null, "va\\_pageview%", new String[] {"VIEW"}));
            check("tables_one_char", () -> tables(meta, "%", "va_even_", null));
            check("tables_type_table", () -> tables(meta, null, "%", new String[] {"TABLE"}));
            check("columns", () -> rows(meta.getColumns(null, null, "va_pageview_event", "%"),
                    "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE", "TYPE_NAME", "NULLABLE", "ORDINAL_POSITION"));
            check("columns_pattern", () -> rows(meta.getColumns(null, null, "va_pageview%", "page%"),
                    "TABLE_NAME", "COLUMN_NAME"));
            check("type_info", () -> rows(meta.getTypeInfo(), "TYPE_NAME", "DATA_TYPE"));
            check("primary_keys", () -> rows(meta.getPrimaryKeys(null, null, "va_pageview_event"),
                    "COLUMN_NAME"));
            check("catalog_schema", () -> map("catalog", conn.getCatalog(), "schema", conn.getSchema()));
            check("statement", () -> statement(conn));
            check("prepared", () -> prepared(conn));
            check("max_rows", () -> maxRows(conn));
            check("query_timeout", () -> timedOut(conn));
            check("cancel", () -> cancelled(conn));
            check("refused_table", () -> refused(conn, "SELECT * FROM tb_pageview_event"));
            check("refused_write", () -> refused(conn, "DELETE FROM va_pageview_event"));
            check("refused_prepared", () -> refusedPrepared(conn, "SELECT * FROM pg_catalog.pg_class"));
            check("after_refusals", () -> rows(conn.createStatement().executeQuery("SELECT 1 AS one"), "one"));
        } finally {
            check("close", () -> {
                conn.close();
                return map();
            });
        }
    }

    static String url(String user, String password, boolean trustCa) {
        String tls = trustCa ? "&useSystemTrustStore=false&tlsRootCerts=" + caPem : "&useSystemTrustStore=true";
        return "jdbc:arrow-flight-sql://" + host + ":" + port + "/?useEncryption=true" + tls
                + "&user=" + user + "&password=" + password;
    }

    static void check(String name, Check check) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("check", name);
        try {
            out.putAll(check.run());
        } catch (Throwable e) {
            out.put("error", String.valueOf(e));
        }
        System.out.println(json(out));
        System.out.flush();
    }

    static Map<String, Object> map(Object... pairs) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) m.put((String) pairs[i], pairs[i + 1]);
        return m;
    }

    static Map<String, Object> refusedConnect(String url) {
        long start = System.nanoTime();
        try (Connection conn = DriverManager.getConnection(url)) {
            conn.createStatement().executeQuery("SELECT 1").close();
            return map("refused", false);
        } catch (SQLException e) {
            return map("refused", true, "message", e.getMessage(), "seconds", seconds(start));
        }
    }

    static Map<String, Object> product(DatabaseMetaData meta) throws SQLException {
        return map("name", meta.getDatabaseProductName(), "version", meta.getDatabaseProductVersion(),
                "driver", meta.getDriverName() + " " + meta.getDriverVersion(),
                "read_only", meta.isReadOnly());
    }

    // What the driver reports from GetSqlInfo, in the words of JDBC; the Python test holds
    // each claim against the server's behaviour.
    static Map<String, Object> sqlInfo(DatabaseMetaData m) throws SQLException {
        Map<String, Object> out = new LinkedHashMap<>();
        info(out, "keywords", () -> m.getSQLKeywords());
        info(out, "numeric_functions", () -> m.getNumericFunctions());
        info(out, "string_functions", () -> m.getStringFunctions());
        info(out, "system_functions", () -> m.getSystemFunctions());
        info(out, "datetime_functions", () -> m.getTimeDateFunctions());
        info(out, "quote", () -> m.getIdentifierQuoteString());
        info(out, "search_escape", () -> m.getSearchStringEscape());
        info(out, "ansi92_entry", () -> m.supportsANSI92EntryLevelSQL());
        info(out, "ansi92_intermediate", () -> m.supportsANSI92IntermediateSQL());
        info(out, "ansi92_full", () -> m.supportsANSI92FullSQL());
        info(out, "grammar_minimum", () -> m.supportsMinimumSQLGrammar());
        info(out, "grammar_core", () -> m.supportsCoreSQLGrammar());
        info(out, "grammar_extended", () -> m.supportsExtendedSQLGrammar());
        info(out, "stores_lower", () -> m.storesLowerCaseIdentifiers());
        info(out, "stores_upper", () -> m.storesUpperCaseIdentifiers());
        info(out, "stores_mixed", () -> m.storesMixedCaseIdentifiers());
        info(out, "supports_mixed", () -> m.supportsMixedCaseIdentifiers());
        info(out, "quoted_stores_mixed", () -> m.storesMixedCaseQuotedIdentifiers());
        info(out, "quoted_supports_mixed", () -> m.supportsMixedCaseQuotedIdentifiers());
        info(out, "quoted_stores_lower", () -> m.storesLowerCaseQuotedIdentifiers());
        info(out, "nulls_high", () -> m.nullsAreSortedHigh());
        info(out, "nulls_low", () -> m.nullsAreSortedLow());
        info(out, "nulls_at_start", () -> m.nullsAreSortedAtStart());
        info(out, "nulls_at_end", () -> m.nullsAreSortedAtEnd());
        info(out, "transactions", () -> m.supportsTransactions());
        info(out, "isolation", () -> m.getDefaultTransactionIsolation());
        info(out, "column_aliasing", () -> m.supportsColumnAliasing());
        info(out, "outer_joins", () -> m.supportsFullOuterJoins());
        info(out, "union_all", () -> m.supportsUnionAll());
        info(out, "like_escape", () -> m.supportsLikeEscapeClause());
        info(out, "group_by_unrelated", () -> m.supportsGroupByUnrelated());
        info(out, "max_column_name", () -> m.getMaxColumnNameLength());
        info(out, "catalog_term", () -> m.getCatalogTerm());
        info(out, "schema_term", () -> m.getSchemaTerm());
        info(out, "select_for_update", () -> m.supportsSelectForUpdate());
        info(out, "stored_procedures", () -> m.supportsStoredProcedures());
        info(out, "batch_updates", () -> m.supportsBatchUpdates());
        return out;
    }

    // One answer; a getter that throws shows as {"error": ...} in its place.
    static void info(Map<String, Object> out, String name, Sql getter) {
        try {
            out.put(name, getter.run());
        } catch (Throwable e) {
            out.put(name, map("error", String.valueOf(e)));
        }
    }

    static Map<String, Object> tables(DatabaseMetaData meta, String schema, String name, String[] types)
            throws SQLException {
        return rows(meta.getTables(null, schema, name, types), "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE");
    }

    static Map<String, Object> rows(ResultSet rs, String... columns) throws SQLException {
        List<Object> rows = new ArrayList<>();
        try (rs) {
            while (rs.next()) {
                List<Object> row = new ArrayList<>();
                for (String c : columns) row.add(rs.getObject(c));
                rows.add(row);
            }
        }
        return map("rows", rows);
    }

    static Map<String, Object> statement(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery(
                        "SELECT page_url, count(*) AS views, min(recorded_at) AS first_seen"
                                + " FROM va_pageview_event GROUP BY page_url ORDER BY page_url")) {
            ResultSetMetaData md = rs.getMetaData();
            List<Object> columns = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                columns.add(List.of(md.getColumnName(i), md.getColumnLabel(i), md.getColumnType(i),
                        md.getColumnTypeName(i)));
            }
            List<Object> rows = new ArrayList<>();
            while (rs.next()) rows.add(List.of(rs.getString(1), rs.getLong(2), rs.getTimestamp(3).toInstant().toString()));
            return map("columns", columns, "rows", rows);
        }
    }

    // One statement, prepared once, executed with two sets of values: a BI filter changing.
    // The SQL and values are reported so that the test runs the same through ADBC.
    static Map<String, Object> prepared(Connection conn) throws SQLException {
        String sql = "SELECT event_id FROM va_pageview_event WHERE page_url = ? AND recorded_at >= ?"
                + " AND CAST(recorded_at AS DATE) <= ? ORDER BY event_id";
        List<Object> runs = new ArrayList<>();
        String[][] values = {
            {"/a", "2024-01-15T10:01:00Z", "2024-01-15"},
            {"/b", "2024-01-14T00:00:00Z", "2024-01-16"},
        };
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            for (String[] v : values) {
                ps.setString(1, v[0]);
                ps.setTimestamp(2, Timestamp.from(java.time.Instant.parse(v[1])));
                ps.setDate(3, Date.valueOf(v[2]));
                List<Object> ids = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) ids.add(rs.getString(1));
                }
                runs.add(ids);
            }
        }
        List<Object> sent = new ArrayList<>();
        for (String[] v : values) sent.add(List.of(v));
        return map("sql", sql, "values", sent, "runs", runs);
    }

    static Map<String, Object> maxRows(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.setMaxRows(2);
            int n = 0;
            try (ResultSet rs = st.executeQuery("SELECT event_id FROM va_pageview_event ORDER BY event_id")) {
                while (rs.next()) n++;
            }
            return map("rows", n, "max_rows", st.getMaxRows());
        }
    }

    static Map<String, Object> timedOut(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.setQueryTimeout(1);
            return failing(() -> st.executeQuery(longSql));
        }
    }

    static Map<String, Object> cancelled(Connection conn) throws Exception {
        try (Statement st = conn.createStatement()) {
            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(1500);
                    st.cancel();
                } catch (Exception e) {
                    System.err.println("cancel: " + e);
                }
            });
            canceller.start();
            Map<String, Object> out = failing(() -> st.executeQuery(longSql));
            canceller.join();
            return out;
        }
    }

    static Map<String, Object> refused(Connection conn, String sql) throws SQLException {
        try (Statement st = conn.createStatement()) {
            return failing(() -> st.executeQuery(sql));
        }
    }

    static Map<String, Object> refusedPrepared(Connection conn, String sql) {
        return failing(() -> conn.prepareStatement(sql).executeQuery());
    }

    interface Sql {
        Object run() throws SQLException;
    }

    // A call that must fail: how long it took and what the user reads.
    static Map<String, Object> failing(Sql call) {
        long start = System.nanoTime();
        try {
            Object result = call.run();
            if (result instanceof ResultSet rs) {
                while (rs.next()) { }
            }
            return map("failed", false, "seconds", seconds(start));
        } catch (SQLException e) {
            return map("failed", true, "seconds", seconds(start), "message", e.getMessage(),
                    "sqlstate", e.getSQLState(), "cause", String.valueOf(e.getCause()));
        }
    }

    static double seconds(long start) {
        return (System.nanoTime() - start) / 1e9;
    }

    static String json(Object value) {
        if (value == null) return "null";
        if (value instanceof Boolean || value instanceof Number) return value.toString();
        if (value instanceof Map<?, ?> m) {
            List<String> parts = new ArrayList<>();
            for (Map.Entry<?, ?> e : m.entrySet()) parts.add(json(String.valueOf(e.getKey())) + ":" + json(e.getValue()));
            return "{" + String.join(",", parts) + "}";
        }
        if (value instanceof List<?> l) {
            List<String> parts = new ArrayList<>();
            for (Object o : l) parts.add(json(o));
            return "[" + String.join(",", parts) + "]";
        }
        StringBuilder sb = new StringBuilder("\"");
        for (char c : value.toString().toCharArray()) {
            if (c == '"' || c == '\\') sb.append('\\').append(c);
            else if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }
}
