import { dockerFixture } from './dockerFixture';
import { ttySuite } from './ttySuite';

// Each session is a container: no network, uid 1001, no capabilities, resource limits.
ttySuite('docker runtime', dockerFixture);
