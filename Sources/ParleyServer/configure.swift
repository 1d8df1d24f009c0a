import Fluent
import JWT
import NIOPosix
import LLM
import Prometheus
import Vapor

/// Wires the application: database, migrations, middleware (outermost first), services and
/// routes. The one place that reads `Settings`.
public func configure(_ app: Application, settings: Settings, clock: AppClock = .live) async throws {
    app.storage[SettingsKey.self] = settings
    let secret = try resolveSecret(app, settings: settings)

    // Database and migrations.
    try DatabaseSetup.configure(app, settings: settings)
    app.migrations.add(CreateUsers())
    app.migrations.add(CreateSessions())
    app.migrations.add(CreateConversations())
    app.migrations.add(CreateMessages())
    app.migrations.add(AddMessageSearch())
    app.migrations.add(CreateEvents())
    app.migrations.add(CreateEventTickets())
    app.migrations.add(CreateEventHorizon())
    app.migrations.add(CreateJobs())
    app.migrations.add(AddMessageCitations())
    app.migrations.add(CreateAssistants())
    app.migrations.add(AddAssistantMCPServers())
    app.migrations.add(AddAssistantSampling())
    app.migrations.add(AddMessageContent())
    app.migrations.add(AddMembershipNotify())
    app.migrations.add(CreateEventCursors())
    app.migrations.add(CreateNotifications())
    app.migrations.add(CreateInvites())
    app.migrations.add(CreateFiles())
    app.migrations.add(AddMessageAttachments())
    app.migrations.add(CreatePushSubscriptions())
    app.migrations.add(CreateEmailDigests())
    app.migrations.add(AddMessageModeration())
    app.migrations.add(CreateAuditEntries())
    app.migrations.add(CreateModelRegistry())
    app.migrations.add(CreateModeration())
    app.migrations.add(AddModelMonitoring())
    app.migrations.add(AddMessageInsertTriggers())
    app.migrations.add(DropAssistantCursor())

    // HTTP server.
    app.http.server.configuration.hostname = settings.host
    app.http.server.configuration.port = settings.port
    app.routes.defaultMaxBodySize = ByteCount(value: settings.maxBodyBytes)
    // Event streams write a heartbeat at least every `heartbeatInterval`, so only connections
    // that have stalled reach the idle timeout.
    let idle = max(settings.idleTimeout, settings.heartbeatInterval * 2).components
    app.http.server.configuration.idleTimeout = .milliseconds(idle.seconds * 1000 + idle.attoseconds / 1_000_000_000_000_000)

    // Middleware, outermost first: request id → access log and metrics → security headers → errors.
    let metrics = HTTPMetrics(registry: PrometheusCollectorRegistry())
    app.storage[MetricsKey.self] = metrics
    // async-kit's pools expose no live counts, so the pool's configured bounds are what is exported.
    let pool = DatabaseSetup.poolSize(settings, eventLoops: app.eventLoopGroup.makeIterator().reduce(0) { n, _ in n + 1 })
    metrics.registry.makeGauge(
        descriptor: .init(metricName: "parley_db_pool_connections_max", unitName: "", helpText: "Most database connections the pool may open."),
        labels: [("driver", pool.driver)]
    ).set(Double(pool.connections))
    // Blocking work gets threads of its own. SQLite's calls run on the application's thread
    // pool, which by default is the process's shared pool of one thread per core: password
    // hashing (a quarter second each at cost 12) and other apps in the same process (tests)
    // queued beside them, so a burst of logins stalled every query. Hashing now has its own
    // pool, and the application's pool is this application's alone.
    let cores = System.coreCount
    app.threadPool = NIOThreadPool(numberOfThreads: max(4, cores * 2))
    let passwordPool = NIOThreadPool(numberOfThreads: max(1, cores / 2))
    passwordPool.start()
    app.lifecycle.use(ThreadPoolLifecycle(pool: passwordPool))
    app.middleware = Middlewares()
    app.middleware.use(RequestIDMiddleware())
    app.middleware.use(AccessLogMiddleware(metrics: metrics, logger: app.logger))
    app.middleware.use(SecurityHeadersMiddleware())
    app.middleware.use(ProblemMiddleware())

    // Services.
    // On a SQLite file, write transactions commit on a connection of Parley's own, which
    // keeps its prepared statements and runs them without a thread hop each (DirectSQLiteConnection).
    var writer: DirectSQLiteConnection?
    // Its WAL is copied into the file by a checkpointer of its own, off the commit path.
    if case .sqlite(let path) = settings.database {
        let checkpointer = WALCheckpointer(path: path, logger: app.logger)
        writer = DirectSQLiteConnection(path: path, threadPool: app.threadPool, logger: app.logger, walHook: checkpointer.hook)
        app.lifecycle.use(DirectSQLiteLifecycle(writer: writer!, checkpointer: checkpointer))
    }
    let writes = WriteGate(serialize: settings.database.isSQLite, writer: writer)
    app.storage[WriteGateKey.self] = writes
    // Features meet here: committed domain events go to this node's subscribers. On SQLite
    // every commit passes this gate in id order, so the newest events are kept for the log's
    // followers to read without a statement.
    let domainEvents = DomainEvents(logger: app.logger, recentCapacity: settings.database.isSQLite ? 4096 : 0)
    writes.onCommit { commit in domainEvents.publish(commit.events) }
    app.storage[DomainEventsKey.self] = domainEvents
    // Background work: the durable job queue and this node's worker (started by `serve`).
    let jobDatabases = app.databases, jobEventLoops = app.eventLoopGroup, jobLogger = app.logger
    let jobs = JobWorker(
        queue: JobQueue(gate: writes, clock: clock, node: UUID().wire),
        options: settings.jobWorker,
        database: {
            guard let db = jobDatabases.database(logger: jobLogger, on: jobEventLoops.any()) else { throw StorageError.notSQL }
            return db
        },
        metrics: JobMetrics(registry: metrics.registry), logger: app.logger)
    writes.onCommit { commit in jobs.committed(commit) }
    app.storage[JobWorkerKey.self] = jobs
    let serverKeys = ServerKeys(secret: secret)
    let tokens = TokenService(
        keys: await TokenService.makeKeys(serverKeys, algorithm: settings.tokenAlgorithm),
        algorithm: settings.tokenAlgorithm, csrfKey: serverKeys.csrf,
        accessTokenLifetime: settings.accessTokenLifetime, clock: clock)
    var accounts = AccountDependencies(
        tokens: tokens,
        passwords: PasswordHasher(cost: settings.bcryptCost, threadPool: passwordPool),
        throttle: LoginThrottle(policy: settings.loginThrottle, clock: clock),
        clock: clock, settings: settings, writes: writes)
    // Registration meets invites here: an invite given at sign-up is used with the account.
    accounts.registration = InviteRegistrationPolicy(required: settings.registrationNeedsInvite, clock: clock)
    app.storage[AccountsKey.self] = accounts
    var chat = ChatDependencies(clock: clock, maxMessageLength: settings.maxMessageLength, hooks: MessageService.Hooks(),
                                writes: writes)
    // Messages carry files through the Files feature's seam, and pass moderation's screen
    // (the deployed `moderation` model and the policies) before they are stored.
    chat.attachments = FileAttachments()
    let modelMetrics = ModelMetrics(registry: metrics.registry)
    let modelDatabases = app.databases, modelEventLoops = app.eventLoopGroup, modelLogger = app.logger
    let serving = ModelServing(database: {
        guard let db = modelDatabases.database(logger: modelLogger, on: modelEventLoops.any()) else { throw StorageError.notSQL }
        return db
    }, canaryPercent: settings.modelCanaryPercent, driftWindow: settings.modelDriftWindow, metrics: modelMetrics, logger: app.logger)
    chat.screening = ModerationScreening(serving: serving, metrics: modelMetrics)
    app.storage[ChatKey.self] = chat

    // Real-time delivery: the hub reads committed events and fans them out.
    let databases = app.databases, eventLoops = app.eventLoopGroup, hubLogger = app.logger
    let hub = EventHub(database: {
        guard let db = databases.database(logger: hubLogger, on: eventLoops.any()) else { throw ProblemError(.serviceUnavailable) }
        return db
    }, bufferSize: settings.eventBufferSize, logger: app.logger, recent: domainEvents)
    writes.onCommit { commit in
        if !commit.events.isEmpty { hub.notify() }
    }
    app.storage[EventHubKey.self] = hub
    let retention = EventRetention(window: settings.eventRetention, clock: clock, writes: writes)
    app.storage[EventRetentionKey.self] = retention
    // Housekeeping, each feature its own tables: events past the window, expired tickets,
    // succeeded jobs as old as the events (kept that long so their dedupe keys hold).
    let maintenance = Maintenance()
    maintenance.add("events") { db in try await retention.prune(on: db) }
    maintenance.add("event tickets") { db in try await EventTicket.deleteExpired(before: clock.now(), gate: writes, on: db) }
    maintenance.add("succeeded jobs") { db in
        try await JobQueue.pruneSucceeded(before: clock.now().addingTimeInterval(-JobQueue.seconds(settings.eventRetention)),
                                          gate: writes, on: db)
    }
    app.storage[MaintenanceKey.self] = maintenance
    var presenceOptions = Presence.Options()
    presenceOptions.enabled = settings.presenceEnabled
    presenceOptions.grace = settings.presenceGrace
    presenceOptions.pushLimit = settings.presencePushLimit
    presenceOptions.nodeTimeout = settings.heartbeatInterval * 3
    let presence = Presence(options: presenceOptions, hub: hub, clock: clock, logger: app.logger)
    app.storage[PresenceKey.self] = presence
    app.lifecycle.use(EventHubLifecycle(hub: hub, presence: presence, heartbeat: settings.heartbeatInterval, clock: clock))
    let ephemeral = EphemeralBus(hub: hub, node: jobs.queue.node, logger: app.logger)
    let signals = SignalBus(logger: app.logger)
    app.storage[SignalBusKey.self] = signals
    if case .postgres(let url, _) = settings.database {
        // Other nodes' commits, presence and ephemeral frames reach this node through LISTEN/NOTIFY.
        let configuration = try DatabaseSetup.postgresConfiguration(url).coreConfiguration
        await presence.connectBus(PostgresEventListener.presenceSender(databases: databases, eventLoops: eventLoops, logger: hubLogger))
        ephemeral.connect(EphemeralBus.postgresSender(databases: databases, eventLoops: eventLoops, logger: hubLogger))
        signals.connect(SignalBus.postgresSender(databases: databases, eventLoops: eventLoops, logger: hubLogger))
        let listener = PostgresEventListener(configuration: configuration, hub: hub, presence: presence, ephemeral: ephemeral,
                                             signals: signals, logger: app.logger)
        app.storage[PostgresEventListenerKey.self] = listener
        app.lifecycle.use(listener)
    }

    // Assistants: a message that asks an assistant commits with its run and the run's job
    // (a reaction in the message's transaction); runs execute as jobs on any serving node.
    let catalog = ModelCatalog(providers: settings.modelProviders)
    for provider in settings.modelProviders {
        app.logger.info("model provider configured", metadata: ["provider": .string(provider.description)])
    }
    let runRegistry = RunRegistry()
    let mcp = MCPServers(settings.mcpServers, logger: app.logger)
    app.lifecycle.use(MCPServersLifecycle(servers: mcp))
    let assistants = AssistantDependencies(writes: writes, clock: clock, catalog: catalog, registry: runRegistry, mcp: mcp)
    app.storage[AssistantsKey.self] = assistants
    let jobDatabase: @Sendable () throws -> any Database = {
        guard let db = jobDatabases.database(logger: jobLogger, on: jobEventLoops.any()) else { throw StorageError.notSQL }
        return db
    }
    let executor = RunExecutor(.init(
        database: jobDatabase, writes: writes, clock: clock, catalog: catalog, chat: chat, bus: ephemeral, registry: runRegistry,
        metrics: AssistantMetrics(registry: metrics.registry), client: OpenAICompatibleModel.sharedClient, mcp: mcp, logger: app.logger))
    jobs.register(AssistantDispatcher.jobQueue) { job in try await executor.handle(job) }
    AssistantDispatcher(clock: clock, registry: runRegistry, reserveSlot: { jobs.reserveSlot(for: $0) }).attach(to: writes)

    // Notifications: a durable follower of the event log turns messages, approval requests and
    // read markers into each person's inbox.
    app.storage[NotificationFollowerKey.self] = Notifier.follower(database: jobDatabase, writes: writes, domainEvents: domainEvents,
                                                                   clock: clock, logger: app.logger)
    // Files: uploads kept by a store (a folder, or the database when nodes share no disk),
    // thumbnails made by a job, and bytes nothing uses swept by housekeeping.
    let filesDirectory = settings.files.directory ?? settings.dataDirectory + "/files"
    let store: any FileStore = switch settings.files.store ?? (settings.database.isSQLite ? .disk : .database) {
    case .disk: DiskFileStore(directory: filesDirectory, clock: clock)
    case .database: DatabaseFileStore(database: jobDatabase, writes: writes, clock: clock)
    }
    let files = FilesDependencies(settings: settings.files, store: store, stagingDirectory: filesDirectory + "/tmp", writes: writes,
                                  clock: clock, chat: chat)
    app.storage[FilesDependenciesKey.self] = files
    let imagingPool = NIOThreadPool(numberOfThreads: 1)
    imagingPool.start()
    app.lifecycle.use(ThreadPoolLifecycle(pool: imagingPool))
    let thumbnails = Thumbnails(dependencies: files, pool: imagingPool)
    jobs.register(Thumbnails.queue) { job in try await thumbnails.handle(job, on: try jobDatabase()) }
    FileCleanup.addMaintenance(to: maintenance, dependencies: files)
    app.storage[FileCleanupFollowerKey.self] = FileCleanup.follower(database: jobDatabase, writes: writes, domainEvents: domainEvents,
                                                                     logger: app.logger)
    try app.grouped("v1").register(collection: UploadController(dependencies: files, thumbnails: thumbnails,
                                                                authentication: accounts.authentication()))

    // Web Push: each new notification goes to the person's subscribed browsers, as jobs.
    let vapid = VAPIDKey(secret: secret)
    if let push = settings.webPush {
        let delivery = PushDelivery(
            sender: WebPushSender(key: vapid, subject: push.subject, client: OpenAICompatibleModel.sharedClient, clock: clock),
            writes: writes, logger: app.logger)
        app.storage[PushDeliveryKey.self] = delivery
        jobs.register(PushDelivery.queue) { job in try await delivery.handle(job, on: try jobDatabase()) }
        app.storage[PushFollowerKey.self] = PushDelivery.follower(database: jobDatabase, writes: writes, domainEvents: domainEvents,
                                                                  clock: clock, logger: app.logger)
    }
    try app.grouped("v1").register(collection: PushController(settings: settings.webPush, key: vapid, writes: writes, clock: clock,
                                                              authentication: accounts.authentication()))

    // E-mail digests: what stays unread for a while goes out by SMTP, as jobs.
    if let email = settings.email, let server = SMTPClient.Server.parse(email.smtpURL) {
        let digests = EmailDigests(transport: SMTPClient(server: server), from: email.from,
                                   baseURL: settings.publicURL ?? "http://\(settings.host):\(settings.port)", writes: writes, clock: clock)
        app.storage[EmailDigestsKey.self] = digests
        jobs.register(EmailDigests.queue) { job in try await digests.handle(job, on: try jobDatabase()) }
        app.storage[EmailFollowerKey.self] = EmailDigests.follower(delay: email.digestDelay, database: jobDatabase, writes: writes,
                                                                   domainEvents: domainEvents, logger: app.logger)
    }
    try app.grouped("v1").register(collection: EmailDigestController(available: settings.email != nil, writes: writes,
                                                                     authentication: accounts.authentication()))

    try app.grouped("v1").register(collection: NotificationController(authentication: accounts.authentication(), writes: writes, clock: clock))
    try app.grouped("v1").register(collection: InviteController(
        dependencies: InviteDependencies(writes: writes, clock: clock, chat: chat, registrationNeedsInvite: settings.registrationNeedsInvite),
        authentication: accounts.authentication()))

    // Models Parley trains itself (a registry of versions, served on every node) and the
    // moderation of every message, which meets sending at the screening seam.
    signals.on(ModelServing.signal) { await serving.refresh() }
    let trainingPool = NIOThreadPool(numberOfThreads: 1)
    trainingPool.start()
    app.lifecycle.use(ThreadPoolLifecycle(pool: trainingPool))
    let registry = ModelRegistryDependencies(writes: writes, clock: clock, signals: signals, serving: serving, trainingPool: trainingPool)
    app.storage[ModelRegistryKey.self] = registry
    let training = ModelTrainingJobs(writes: writes, clock: clock, signals: signals, pool: trainingPool, logger: app.logger)
    jobs.register(ModelRegistryService.trainQueue) { job in try await training.handle(job, on: try jobDatabase()) }
    // A shadow version scores what production scores, off the send path: a follower of the
    // event log keeps both scores for the comparison report, for 30 days.
    app.storage[ShadowFollowerKey.self] = ShadowScoring.follower(serving: serving, database: jobDatabase, writes: writes,
                                                                 domainEvents: domainEvents, clock: clock, logger: app.logger)
    maintenance.add("model shadow scores") { db in
        let before = clock.now().addingTimeInterval(-ShadowScoring.retention)
        return try await db.writeTransaction(writes) { tx in try await ShadowScore.deleteOlder(than: before, on: tx) }
    }
    try app.grouped("v1").register(collection: ModelRegistryController(registry: registry, authentication: accounts.authentication()))
    try app.grouped("v1").register(collection: ModerationController(chat: chat, writes: writes, clock: clock, serving: serving,
                                                                    authentication: accounts.authentication()))

    try routes(app, accounts: accounts, chat: chat, hub: hub, ephemeral: ephemeral, presence: presence, metrics: metrics)
    try app.grouped("v1").register(collection: AssistantController(dependencies: assistants, authentication: accounts.authentication()))

    app.asyncCommands.use(CreateAdminCommand(), as: "create-admin")
    app.asyncCommands.use(SeedCommand(), as: "seed")
    app.asyncCommands.use(AssistantCommand(), as: "assistant")
    app.asyncCommands.use(ModelCommand(), as: "model")
}

/// Prepares the database before serving: SQLite connection settings, then migrations
/// (development) or a refusal naming the pending ones (production).
public func prepareToServe(_ app: Application) async throws {
    try await prepareDatabase(app)
    if let maintenance = app.storage[MaintenanceKey.self], let interval = app.settings.eventPruneInterval {
        // Only a serving node tidies; other commands leave the tables alone.
        app.lifecycle.use(MaintenanceLifecycle(maintenance: maintenance, interval: interval))
    }
    if let jobs = app.storage[JobWorkerKey.self] {
        // Only a serving node runs jobs; `migrate` and the other commands leave them alone.
        app.lifecycle.use(jobs)
    }
    if let notifications = app.storage[NotificationFollowerKey.self] {
        app.lifecycle.use(notifications)
    }
    if let files = app.storage[FileCleanupFollowerKey.self] {
        app.lifecycle.use(files)
    }
    if let push = app.storage[PushFollowerKey.self] {
        app.lifecycle.use(push)
    }
    if let email = app.storage[EmailFollowerKey.self] {
        app.lifecycle.use(email)
    }
    if let shadow = app.storage[ShadowFollowerKey.self] {
        app.lifecycle.use(shadow)
    }
    if let models = app.storage[ModelRegistryKey.self] {
        // Loads the deployed model versions before the first request.
        app.lifecycle.use(models.serving)
    }
}

/// Readies the database for commands that use it: SQLite connection settings, then
/// migrations (development) or a refusal naming the pending ones (production).
public func prepareDatabase(_ app: Application) async throws {
    let settings = app.settings
    try await DatabaseSetup.prepareSQLite(app)
    if settings.autoMigrate {
        try await app.autoMigrate()
        return
    }
    try await app.migrator.setupIfNeeded().get()
    let pending = try await DatabaseSetup.pendingMigrations(app)
    if !pending.isEmpty {
        throw SettingsError(problems: [
            "the database schema is not migrated (\(pending.count) pending: \(pending.joined(separator: ", "))); run `parley migrate` first",
        ])
    }
}

private func resolveSecret(_ app: Application, settings: Settings) throws -> String {
    if let secret = settings.secretKey { return secret }
    guard settings.mode != .production else {
        throw SettingsError(problems: ["PARLEY_SECRET_KEY is required in production"])
    }
    let (secret, path, created) = try DevelopmentSecret.loadOrCreate(in: settings.dataDirectory)
    if created {
        app.logger.notice("generated a development secret; set PARLEY_SECRET_KEY in production", metadata: ["path": .string(path)])
    }
    return secret
}

struct SettingsKey: StorageKey { typealias Value = Settings }
struct MetricsKey: StorageKey { typealias Value = HTTPMetrics }
struct AccountsKey: StorageKey { typealias Value = AccountDependencies }
struct ChatKey: StorageKey { typealias Value = ChatDependencies }
struct WriteGateKey: StorageKey { typealias Value = WriteGate }
struct DomainEventsKey: StorageKey { typealias Value = DomainEvents }
struct JobWorkerKey: StorageKey { typealias Value = JobWorker }
struct MaintenanceKey: StorageKey { typealias Value = Maintenance }
struct EventHubKey: StorageKey { typealias Value = EventHub }
struct EventRetentionKey: StorageKey { typealias Value = EventRetention }
struct PresenceKey: StorageKey { typealias Value = Presence }
struct PostgresEventListenerKey: StorageKey { typealias Value = PostgresEventListener }
struct AssistantsKey: StorageKey { typealias Value = AssistantDependencies }

extension Application {
    public var settings: Settings {
        guard let settings = storage[SettingsKey.self] else {
            preconditionFailure("configure(_:settings:) has not run")
        }
        return settings
    }

    /// This node's job worker, where features register the handlers of their queues.
    var jobs: JobWorker {
        guard let jobs = storage[JobWorkerKey.self] else {
            preconditionFailure("configure(_:settings:) has not run")
        }
        return jobs
    }

    /// The assistants' models by provider name; tests and embedding applications may
    /// `register` a model of their own.
    var modelCatalog: ModelCatalog {
        guard let assistants = storage[AssistantsKey.self] else {
            preconditionFailure("configure(_:settings:) has not run")
        }
        return assistants.catalog
    }

    /// This node's committed domain events, for features that subscribe to them.
    var domainEvents: DomainEvents {
        guard let events = storage[DomainEventsKey.self] else {
            preconditionFailure("configure(_:settings:) has not run")
        }
        return events
    }
}
