// Reads, checks and writes a module's userconfig.xml (schema: REFERENCE.md, plus <nodes> and port
// attributes of ours). Parsing expands macros, fills defaults and validates; any problem is a
// ConfigurationException naming the file, the line and the reason.
//
// Nodes of the module, when <nodes> is absent: a mirror takes the cluster's two nodes (an error if
// the cluster has another count); a farm takes the <host> names of its load balancing, else every
// cluster node. Heartbeat lans, when none is listed: every cluster lan all the module's nodes are on.
// Without a ClusterConfig those stay empty and nothing is checked against the cluster.
namespace ServiceKeeper.Engine.Configuration
{
    public static class UserConfigFile
    {
        public const string FileName = "userconfig.xml";

        /// <exception cref="ConfigurationException">The file cannot be read or is not a valid userconfig.xml.</exception>
        public static UserConfig Load(string path, ClusterConfig? cluster = null) =>
            Parse(ConfigXml.ReadFile(path), path, cluster);

        /// <param name="fileName">How errors name the file.</param>
        /// <param name="cluster">When given, node and lan names are checked against it and missing ones resolved.</param>
        /// <exception cref="ConfigurationException">Malformed XML or an invalid configuration.</exception>
        public static UserConfig Parse(string xml, string fileName, ClusterConfig? cluster = null)
        {
            var document = ConfigXml.Parse(xml, fileName);
            var map = new SourceMap();
            var config = UserConfigReader.Read(document, fileName, map);
            UserConfigValidator.Validate(config, cluster, fileName, map);
            return config;
        }

        /// <summary>Checks a configuration built in code and fills what the cluster decides (see the file header).</summary>
        /// <exception cref="ConfigurationException">The first problem found; it has no line.</exception>
        public static void Validate(UserConfig config, ClusterConfig? cluster = null, string fileName = FileName) =>
            UserConfigValidator.Validate(config, cluster, fileName, new SourceMap());

        /// <summary>The file text with every value explicit; Parse(ToXml(c)) gives back an equal configuration
        /// (macros are written expanded).</summary>
        public static string ToXml(UserConfig config) => UserConfigWriter.Write(config);
    }
}
